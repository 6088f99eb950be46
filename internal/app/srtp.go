package app

import (
	"fmt"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/session"
)

// srtpConfig reads the SRTP settings into the engine's Config fields.
func srtpConfig(cfg config.Config) (session.Config, error) {
	var out session.Config
	var err error
	if out.TrunkSRTP, err = session.ParseSRTPOffer(cfg.Trunk.SRTP); err != nil {
		return out, fmt.Errorf("trunk.srtp: %w", err)
	}
	if out.SRTPInbound, err = session.ParseSRTPInbound(cfg.Media.SRTPInbound); err != nil {
		return out, fmt.Errorf("media.srtp_inbound: %w", err)
	}
	for i, name := range cfg.Media.SRTPSuites {
		suite, err := media.ParseSRTPSuite(name)
		if err != nil {
			return out, fmt.Errorf("media.srtp_suites[%d]: %w", i, err)
		}
		out.SRTPSuites = append(out.SRTPSuites, suite)
	}
	return out, nil
}
