package sip

import (
	"net/netip"

	"github.com/callctl/callctl/internal/flood"
	"slices"
	"strings"
)

// Policy is the part of an agent's Config that can change while it runs
// (a configuration reload): whom it serves, how much each source may
// send, and how it sends large requests. Dialogs and transactions already under way are not affected;
// a request from a source that is no longer allowed is refused from then
// on, whatever dialog it belongs to, as at start.
type Policy struct {
	// Allow, RefuseWith403, Scanners, Flood and Peers are as in Config.
	// A new Flood applies to every source's bucket at once; what the
	// limiter knows of each source (a block in force) stays.
	Allow         []netip.Prefix
	RefuseWith403 bool
	Scanners      []string
	Flood         flood.Config
	Peers         []PeerPolicy
}

// policyState is a Policy ready for the intake's hot path; it is never
// modified once stored.
type policyState struct {
	allow     []netip.Prefix
	refuse403 bool
	scanners  [][]byte // lower-case
	peers     []PeerPolicy
}

// SetPolicy switches the agent to p at once: every message read after it
// returns is checked against p, and none against a mix of the old and p.
func (a *Agent) SetPolicy(p Policy) {
	st := &policyState{allow: slices.Clone(p.Allow), refuse403: p.RefuseWith403, peers: slices.Clone(p.Peers)}
	for _, s := range p.Scanners {
		if s = strings.TrimSpace(s); s != "" {
			st.scanners = append(st.scanners, []byte(strings.ToLower(s)))
		}
	}
	a.policy.Store(st)
	a.limiter.SetConfig(p.Flood)
}
