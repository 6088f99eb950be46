package app

import (
	"net"
	"strings"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
)

// largeOverPeers is the per-host policy for requests too large for UDP
// (trunk.large_over, routes[].large_over): the trunk's host, then each
// route target's host. The first entry for a host wins, as the routes'
// order does.
func largeOverPeers(cfg *config.Config) []sip.PeerPolicy {
	var peers []sip.PeerPolicy
	add := func(host, mode string) {
		if host == "" {
			return
		}
		for _, p := range peers {
			if strings.EqualFold(p.Host, host) {
				return
			}
		}
		peers = append(peers, sip.PeerPolicy{Host: host, LargeOver: mode})
	}
	if host, _, err := net.SplitHostPort(cfg.Trunk.Address); err == nil {
		add(host, cfg.Trunk.LargeOver)
	}
	for _, r := range cfg.Routes {
		mode := r.LargeOver
		if mode == "" {
			mode = cfg.Trunk.LargeOver
		}
		var u gosip.Uri
		if err := gosip.ParseUri(strings.ReplaceAll(r.Target, "{number}", "0"), &u); err == nil {
			add(strings.Trim(u.Host, "[]"), mode)
		}
	}
	return peers
}
