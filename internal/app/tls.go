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

// Reload re-reads what callctl can change without a restart (SIGHUP): for
// now the SIP TLS certificate and key (sip.tls.cert_file, key_file). TLS
// handshakes from then on present the new certificate; connections and
// calls already up are untouched. A file that cannot be used keeps the old
// certificate in service; the error is logged and returned.
func (a *App) Reload() error {
	if a.cfg.SIP.TLS.CertFile == "" {
		a.log.Info("reload: nothing to reload (no sip.tls.cert_file)")
		return nil
	}
	if err := a.agent.ReloadCertificate(); err != nil {
		a.log.Error("reload: SIP TLS certificate not reloaded; the previous one stays in use",
			zap.String("cert_file", a.cfg.SIP.TLS.CertFile), zap.String("key_file", a.cfg.SIP.TLS.KeyFile), zap.Error(err))
		return err
	}
	a.log.Info("reload: SIP TLS certificate reloaded; new TLS connections get it",
		zap.String("cert_file", a.cfg.SIP.TLS.CertFile))
	return nil
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
