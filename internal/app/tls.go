package app

import (
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// sipTLS is the SIP layer's view of sip.tls.
func sipTLS(t config.SIPTLS) sip.TLSConfig {
	return sip.TLSConfig{
		Listen:            t.Listen,
		CertFile:          t.CertFile,
		KeyFile:           t.KeyFile,
		CAFile:            t.CAFile,
		MinVersion:        config.TLSVersion(t.MinVersion),
		RequireClientCert: t.ClientAuth == "require",
	}
}

// SIPTLSAddr is the host:port of the SIP TLS listener, or "" without one.
func (a *App) SIPTLSAddr() string { return a.agent.TLSAddr() }

// SIPSendFailures is how many SIP messages callctl could not send, by
// reason (connect: no connection or a failed TLS handshake, too_large,
// write).
func (a *App) SIPSendFailures() map[string]uint64 { return a.agent.SendFailures() }

// warnTLS logs what a TLS setup that validates may still get wrong.
func warnTLS(cfg config.Config, log *zap.Logger) {
	if cfg.UsesTLS() && cfg.SIP.TLS.Listen == "" {
		log.Warn("B legs use TLS but sip.tls.listen is empty: callctl's Contact on them names its SIP port with transport=tls, " +
			"so a callee that sends its requests (BYE, re-INVITE) to the Contact instead of on callctl's connection cannot reach callctl; set sip.tls.listen")
	}
}
