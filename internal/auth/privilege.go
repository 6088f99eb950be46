package auth

import (
	"fmt"
	"sort"
	"strings"
)

// Privilege is one thing a client may do, as written in the configuration.
type Privilege string

// The privileges. The sessions.* ones guard the session operations of the
// same name; audit.view guards reading the audit trail and call records;
// config.reload guards asking callctl to re-read its configuration.
const (
	SessionsView     Privilege = "sessions.view"
	SessionsHold     Privilege = "sessions.hold"
	SessionsTransfer Privilege = "sessions.transfer"
	SessionsForward  Privilege = "sessions.forward"
	SessionsHangup   Privilege = "sessions.hangup"
	SessionsDTMF     Privilege = "sessions.dtmf"
	SessionsListen   Privilege = "sessions.listen"
	AuditView        Privilege = "audit.view"
	ConfigReload     Privilege = "config.reload"
)

// known is the list privilege sets index into: bit i of a privSet is
// known[i]. AllPrivileges is a copy, so changing it changes nothing here.
var known = [...]Privilege{
	SessionsView, SessionsHold, SessionsTransfer, SessionsForward,
	SessionsHangup, SessionsDTMF, SessionsListen, AuditView, ConfigReload,
}

// AllPrivileges lists every privilege, in documentation order. It is for
// reading (listing, help texts); the package does not use it.
var AllPrivileges = append([]Privilege(nil), known[:]...)

// allowedList is "sessions.view, sessions.hold, ...", for error messages.
var allowedList = func() string {
	s := make([]string, len(known))
	for i, p := range known {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}()

// ParsePrivilege returns the privilege named s, or an error naming the
// allowed ones.
func ParsePrivilege(s string) (Privilege, error) {
	if _, ok := privBit(Privilege(s)); !ok {
		return "", fmt.Errorf("%q is not a privilege (allowed: %s)", s, allowedList)
	}
	return Privilege(s), nil
}

// privSet is a set of known privileges, one bit each.
type privSet uint16

func privBit(p Privilege) (privSet, bool) {
	for i, k := range known {
		if k == p {
			return 1 << i, true
		}
	}
	return 0, false
}

func (s privSet) has(p Privilege) bool {
	b, ok := privBit(p)
	return ok && s&b != 0
}

// list returns the set's privileges sorted by name.
func (s privSet) list() []Privilege {
	var out []Privilege
	for i, k := range known {
		if s&(1<<i) != 0 {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

const allPrivs privSet = 1<<len(known) - 1
