package app

import (
	"fmt"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/session"
)

// srtpConfig reads the SRTP settings into the engine's Config fields, and
// each route's srtp into routes (made from cfg.Routes, in order).
func srtpConfig(cfg config.Config, routes []session.Route) (session.Config, error) {
	var out session.Config
	var err error
	for i, r := range cfg.Routes {
		if r.SRTP == "" || i >= len(routes) {
			continue
		}
		mode, err := session.ParseSRTPOffer(r.SRTP)
		if err != nil {
			return out, fmt.Errorf("routes[%d].srtp: %w", i, err)
		}
		routes[i].SRTP = &mode
	}
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
