package session

import (
	"slices"

	"github.com/callctl/callctl/internal/policy"
)

// Reloadable is the part of Config a running engine can change (a
// configuration reload): where new calls go and how many may run. Calls
// already up keep what they have; an operation started after the reload
// (a transfer, a forward) goes by the new routes and target policy.
type Reloadable struct {
	Routes        []Route
	TransferHosts []string
	MaxSessions   int
	MaxPerSource  int
}

// routing is the routes and the transfer target policy made from them,
// swapped whole; never modified once stored.
type routing struct {
	routes  []Route
	targets *policy.Targets
}

// newRouting builds the routing for the trunk at trunkAddress: hosts
// (calls.transfer_hosts), or when empty the trunk's and the routes' hosts.
func newRouting(trunkAddress string, routes []Route, hosts []string) *routing {
	if len(hosts) == 0 {
		routeTargets := make([]string, len(routes))
		for i, r := range routes {
			routeTargets[i] = r.Target
		}
		hosts = policy.DefaultHosts(trunkAddress, routeTargets)
	}
	return &routing{routes: slices.Clone(routes), targets: policy.New(hosts)}
}

// Reload switches the engine to r for what starts from now on: the routes
// and target policy at once (a call's set-up takes them once, see
// Session.routing), and the admission bounds. Lowering calls.max_sessions
// below the calls running ends none of them; new INVITEs get 503 until
// enough have ended.
func (e *Engine) Reload(r Reloadable) {
	e.routing.Store(newRouting(e.cfg.TrunkAddress, r.Routes, r.TransferHosts))
	e.admission.setLimits(r.MaxSessions, r.MaxPerSource)
}

// setLimits changes the bounds admit checks.
func (a *admission) setLimits(max, perSource int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.max, a.perSource = max, perSource
}
