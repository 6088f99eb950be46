package config

import (
	"fmt"
	"reflect"
	"strings"
)

// reloadable are the keys a running callctl applies when it re-reads its
// configuration (SIGHUP, `callctl config reload`; internal/app reload.go):
// the API clients and what they may do, whom SIP accepts, and where and how
// many new calls go. Each applies to what starts after the reload; a call
// already up keeps what it has. Every other key takes effect only at a
// start, and a reload that would change one is refused whole.
var reloadable = []string{
	"clients", "roles",
	"sip.allow", "sip.refused", "sip.scanners", "sip.flood",
	"routes", "calls.transfer_hosts",
	"calls.max_sessions", "calls.max_per_source",
}

// Reloadable reports whether key (a dotted key as Diff returns it) can
// change in a running callctl.
func Reloadable(key string) bool {
	for _, r := range reloadable {
		if key == r || strings.HasPrefix(key, r+".") || strings.HasPrefix(key, r+"[") {
			return true
		}
	}
	return false
}

// ReloadableKeys lists the keys Reloadable accepts, for help texts.
func ReloadableKeys() []string { return append([]string(nil), reloadable...) }

// Diff returns the dotted keys whose values differ between old and new, in
// the order of the configuration's fields: a scalar key ("media.rtp_ports"),
// a list of values as one key ("sip.allow"), and a list of sections
// ("routes", "clients", "roles") as one key too. An empty list and an
// absent one are the same.
func Diff(old, new Config) []string {
	var out []string
	var walk func(a, b reflect.Value, key string)
	walk = func(a, b reflect.Value, key string) {
		t := a.Type()
		for i := range t.NumField() {
			name := yamlKey(t.Field(i))
			if name == "" {
				continue
			}
			fa, fb, k := a.Field(i), b.Field(i), join(key, name)
			switch {
			case fa.Kind() == reflect.Struct && fa.Type() != durationType:
				walk(fa, fb, k)
			case fa.Kind() == reflect.Slice:
				if (fa.Len() != 0 || fb.Len() != 0) && !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
					out = append(out, k)
				}
			default:
				if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
					out = append(out, k)
				}
			}
		}
	}
	walk(reflect.ValueOf(old), reflect.ValueOf(new), "")
	return out
}

// RestartError refuses a reload that changes keys only a restart applies.
type RestartError struct {
	// Keys are the changed keys, in Diff's order.
	Keys []string
}

func (e *RestartError) Error() string {
	return fmt.Sprintf("%s: changed, but only a restart applies %s; nothing was changed (reloadable: %s)",
		strings.Join(e.Keys, ", "), map[bool]string{true: "it", false: "them"}[len(e.Keys) == 1], strings.Join(reloadable, ", "))
}

// CheckReload returns the keys that differ between old and new, or a
// *RestartError naming every changed key that only a restart applies.
func CheckReload(old, new Config) ([]string, error) {
	changed := Diff(old, new)
	var restart []string
	for _, k := range changed {
		if !Reloadable(k) {
			restart = append(restart, k)
		}
	}
	if len(restart) > 0 {
		return changed, &RestartError{Keys: restart}
	}
	return changed, nil
}
