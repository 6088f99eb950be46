package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// examplePath is the documented example, relative to this package.
const examplePath = "../../configs/callctl.yaml"

// writeFile writes content to a file named callctl.yaml in a temp dir.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "callctl.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadWithoutFileGivesDefaults(t *testing.T) {
	got, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load(\"\") = %+v, want Default() %+v", got, Default())
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestLoadOverlaysFileOnDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Config)
	}{
		{"empty file keeps defaults", "", func(*Config) {}},
		{"comments only keep defaults", "# nothing\n", func(*Config) {}},
		{"one key keeps its siblings", "sip:\n  listen: 0.0.0.0:5080\n", func(c *Config) {
			c.SIP.Listen = "0.0.0.0:5080"
		}},
		{"a list replaces the default list", "sip:\n  allow: [10.0.0.0/8]\n", func(c *Config) {
			c.SIP.Allow = []string{"10.0.0.0/8"}
		}},
		{"durations are Go strings", "calls:\n  ring_timeout: 1m30s\nmedia:\n  port_rest: 250ms\n", func(c *Config) {
			c.Calls.RingTimeout = 90 * time.Second
			c.Media.PortRest = 250 * time.Millisecond
		}},
		{"integers", "calls:\n  max_sessions: 7\n", func(c *Config) { c.Calls.MaxSessions = 7 }},
		{"empty section keeps defaults", "sip:\nlog:\n  level: debug\n", func(c *Config) { c.Log.Level = "debug" }},
		{"routes", "routes:\n  - match: '^9\\d+$'\n    target: sip:{number}@192.0.2.1:5060\n    transport: tcp\n", func(c *Config) {
			c.Routes = []Route{{Match: `^9\d+$`, Target: "sip:{number}@192.0.2.1:5060", Transport: "tcp"}}
		}},
		{"secrets", "trunk:\n  username: alice\n  password: s3cret\n", func(c *Config) {
			c.Trunk.Username, c.Trunk.Password = "alice", "s3cret"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadRejectsBadFilesNamingFileLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{
			name: "unknown key in a section",
			yaml: "sip:\n  listen: 127.0.0.1:5070\n  listn: x\n",
			want: []string{`callctl.yaml:3: unknown key "listn" in sip (known: listen, transports, advertise, allow, user_agent, refused, flood, scanners, log_interval, tls); did you mean "listen"?`},
		},
		{
			name: "unknown top-level key",
			yaml: "log:\n  level: info\nlogging:\n  level: info\n",
			want: []string{`callctl.yaml:3: unknown key "logging" at the top level (known: sip, trunk, routes, calls, media, listen, api, clients, roles, audit, admin, log, shutdown, cluster)`},
		},
		{
			name: "unknown key in a route",
			yaml: "routes:\n  - match: x\n    taget: sip:a@b\n",
			want: []string{`callctl.yaml:3: unknown key "taget" in routes[0]`, `did you mean "target"?`},
		},
		{
			name: "word where a number belongs",
			yaml: "calls:\n  max_sessions: lots\n",
			want: []string{`callctl.yaml:2: calls.max_sessions: "lots" is not a whole number`},
		},
		{
			name: "bare number where a duration belongs",
			yaml: "calls:\n\n  ring_timeout: 60\n",
			want: []string{`callctl.yaml:3: calls.ring_timeout: "60" is not a duration (write it like "30s"`},
		},
		{
			name: "bad duration",
			yaml: "media:\n  timeout: 10 minutes\n",
			want: []string{`callctl.yaml:2: media.timeout: "10 minutes" is not a duration`},
		},
		{
			name: "single value where a list belongs",
			yaml: "sip:\n  transports: udp\n",
			want: []string{`callctl.yaml:2: sip.transports: expected a list`},
		},
		{
			name: "list where a single value belongs",
			yaml: "sip:\n  listen: [a, b]\n",
			want: []string{`callctl.yaml:2: sip.listen: expected a single value, got a list`},
		},
		{
			name: "value where a section belongs",
			yaml: "sip: 127.0.0.1:5070\n",
			want: []string{`callctl.yaml:1: sip: expected a mapping of keys (listen, transports`},
		},
		{
			name: "key given twice",
			yaml: "log:\n  level: info\n  level: debug\n",
			want: []string{`callctl.yaml:3: key "level" in log given twice (first at line 2)`},
		},
		{
			name: "syntax error",
			yaml: "sip:\n  listen: [127.0.0.1\n",
			want: []string{`callctl.yaml:`},
		},
		{
			name: "two documents",
			yaml: "log:\n  level: info\n---\nlog:\n  level: debug\n",
			want: []string{`more than one YAML document`},
		},
		{
			name: "every problem at once",
			yaml: "sip:\n  listn: x\ncalls:\n  max_sessions: many\nlog:\n  colour: true\n",
			want: []string{`callctl.yaml:2: unknown key "listn"`, `callctl.yaml:4: calls.max_sessions`, `callctl.yaml:6: unknown key "colour" in log`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.yaml)
			got, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded with %+v, want an error", got)
			}
			msg := err.Error()
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "callctl.yaml:", path+":")
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
			if !reflect.DeepEqual(got, Default()) {
				t.Errorf("a failed Load returned %+v, want Default()", got)
			}
		})
	}
}

func TestLoadMissingFileIsNotExist(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// The documented example shows the defaults and sets nothing else, so
// loading it must give exactly Default(), and it must be valid.
func TestExampleConfigLoadsAsDefaults(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	want := Default()
	// "[]" in the example, nil in Default().
	if len(got.Routes) == 0 {
		got.Routes = nil
	}
	if len(got.Clients) == 0 {
		got.Clients = nil
	}
	if len(got.Roles) == 0 {
		got.Roles = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example =\n%+v\nwant Default()\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("example does not validate: %v", err)
	}
}

// keyPaths lists every yaml key of t, dotted; keys below a list of sections
// are written "routes[].match".
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
		if key == "" {
			continue
		}
		path := join(prefix, key)
		out = append(out, path)
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			out = append(out, keyPaths(ft, path)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), path+"[]")...)
		}
	}
	return out
}

// lookup finds the key node and value node for a dotted path in a mapping.
func lookup(m *yaml.Node, path string) (key, val *yaml.Node) {
	for _, part := range strings.Split(path, ".") {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil, nil
		}
		key, val = nil, nil
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == part {
				key, val = m.Content[i], m.Content[i+1]
			}
		}
		m = val
	}
	return key, val
}

func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	paths := keyPaths(reflect.TypeOf(Config{}), "")
	if len(paths) < 30 {
		t.Fatalf("found only %d keys by reflection: %v", len(paths), paths)
	}
	for _, p := range paths {
		if list, sub, ok := strings.Cut(p, "[]."); ok {
			// Keys of list items (routes) are documented in the list's
			// comment, since the example list is empty.
			k, _ := lookup(root, list)
			if k == nil || !strings.Contains(k.HeadComment, sub+":") {
				t.Errorf("%s: not documented as %q in the comment above %q in %s", p, sub+":", list, examplePath)
			}
			continue
		}
		k, v := lookup(root, p)
		if k == nil {
			t.Errorf("%s: missing from %s", p, examplePath)
			continue
		}
		if k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
			t.Errorf("%s: has no comment in %s", p, examplePath)
		}
	}
}

func TestApplyEnvOverridesKeys(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    func(*Config)
	}{
		{"nothing set", nil, func(*Config) {}},
		{"string", []string{"CALLCTL_SIP_LISTEN=0.0.0.0:5090"}, func(c *Config) { c.SIP.Listen = "0.0.0.0:5090" }},
		{"key with underscore", []string{"CALLCTL_MEDIA_RTP_PORTS=30000-30099"}, func(c *Config) { c.Media.RTPPorts = "30000-30099" }},
		{"integer", []string{"CALLCTL_CALLS_MAX_SESSIONS=5"}, func(c *Config) { c.Calls.MaxSessions = 5 }},
		{"duration", []string{"CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=2s"}, func(c *Config) { c.Shutdown.DrainTimeout = 2 * time.Second }},
		{"secret", []string{"CALLCTL_TRUNK_PASSWORD=pw"}, func(c *Config) { c.Trunk.Password = "pw" }},
		{"admin token", []string{"CALLCTL_ADMIN_TOKEN=t"}, func(c *Config) { c.Admin.Token = "t" }},
		{"list is comma-separated", []string{"CALLCTL_SIP_ALLOW=127.0.0.0/8, 10.0.0.0/8"}, func(c *Config) {
			c.SIP.Allow = []string{"127.0.0.0/8", "10.0.0.0/8"}
		}},
		{"empty list", []string{"CALLCTL_SIP_TRANSPORTS="}, func(c *Config) { c.SIP.Transports = []string{} }},
		{"transfer hosts", []string{"CALLCTL_CALLS_TRANSFER_HOSTS=192.0.2.10,pbx.example.com"}, func(c *Config) {
			c.Calls.TransferHosts = []string{"192.0.2.10", "pbx.example.com"}
		}},
		{"empty string is still an override", []string{"CALLCTL_SIP_USER_AGENT="}, func(c *Config) { c.SIP.UserAgent = "" }},
		{"value containing =", []string{"CALLCTL_TRUNK_PASSWORD=a=b"}, func(c *Config) { c.Trunk.Password = "a=b" }},
		{"unknown and foreign variables are ignored", []string{"CALLCTL_CONFIG=x.yaml", "CALLCTL_NO_SUCH_KEY=t", "PATH=/bin", "sip_listen=x"}, func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Default()
			if err := ApplyEnv(&got, tt.environ); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ApplyEnv =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestApplyEnvRejectsBadValuesNamingTheVariable(t *testing.T) {
	tests := []struct {
		environ []string
		want    []string
	}{
		{[]string{"CALLCTL_CALLS_MAX_SESSIONS=many"}, []string{`CALLCTL_CALLS_MAX_SESSIONS="many" (calls.max_sessions): not a whole number`}},
		{[]string{"CALLCTL_MEDIA_TIMEOUT=60"}, []string{`CALLCTL_MEDIA_TIMEOUT="60" (media.timeout): not a duration`}},
		{
			[]string{"CALLCTL_CALLS_RING_TIMEOUT=soon", "CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=later"},
			[]string{"CALLCTL_CALLS_RING_TIMEOUT", "CALLCTL_SHUTDOWN_DRAIN_TIMEOUT"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, " "), func(t *testing.T) {
			cfg := Default()
			err := ApplyEnv(&cfg, tt.environ)
			if err == nil {
				t.Fatal("ApplyEnv succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Every scalar key of the file has a variable, named from its yaml path.
func TestEveryScalarKeyHasAnEnvironmentVariable(t *testing.T) {
	var want []string
	for _, p := range keyPaths(reflect.TypeOf(Config{}), "") {
		if strings.Contains(p, "[]") {
			continue // keys inside list items (routes) come from the file only
		}
		ft := typeAt(reflect.TypeOf(Config{}), p)
		if ft.Kind() == reflect.Struct && ft != durationType || ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			continue // sections and lists of sections
		}
		want = append(want, "CALLCTL_"+strings.ToUpper(strings.ReplaceAll(p, ".", "_")))
	}
	slices.Sort(want)
	got := EnvVars()
	if !slices.Equal(got, want) {
		t.Errorf("EnvVars() =\n%v\nwant\n%v", got, want)
	}
	for _, name := range []string{"CALLCTL_SIP_LISTEN", "CALLCTL_SIP_ALLOW", "CALLCTL_MEDIA_RTP_PORTS", "CALLCTL_CALLS_MAX_SESSIONS", "CALLCTL_TRUNK_PASSWORD", "CALLCTL_LOG_LEVEL"} {
		if !slices.Contains(got, name) {
			t.Errorf("EnvVars() lacks %s", name)
		}
	}

	// Each variable really sets its key: give every one a non-default value.
	cfg := Default()
	for _, l := range leaves(&cfg) {
		value := "v-" + l.key
		switch {
		case l.val.Type() == durationType:
			value = "1234ms"
		case l.val.Kind() == reflect.Int:
			value = "4321"
		case l.val.Kind() == reflect.Float64:
			value = "43.21"
		case l.val.Kind() == reflect.Slice:
			value = "x,y"
		case l.val.Kind() == reflect.Bool:
			value = strconv.FormatBool(!l.val.Bool())
		}
		if err := ApplyEnv(&cfg, []string{l.env + "=" + value}); err != nil {
			t.Errorf("%s: %v", l.env, err)
		}
	}
	def := Default()
	defLeaves := leaves(&def)
	for i, l := range leaves(&cfg) {
		if reflect.DeepEqual(l.val.Interface(), defLeaves[i].val.Interface()) {
			t.Errorf("%s did not change %s (still %v)", l.env, l.key, l.val.Interface())
		}
	}
}

// typeAt returns the type of the field at a dotted yaml path.
func typeAt(t reflect.Type, path string) reflect.Type {
	for _, part := range strings.Split(path, ".") {
		f, ok := fieldByKey(t, part)
		if !ok {
			panic("no key " + path)
		}
		t = f.Type
	}
	return t
}

func TestValidateRejectsBadValuesNamingKeyAndAllowedValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string
		msg    string // substring of the message
	}{
		{"listen not host:port", func(c *Config) { c.SIP.Listen = "127.0.0.1" }, "sip.listen", "not host:port"},
		{"listen bad port", func(c *Config) { c.SIP.Listen = "127.0.0.1:99999" }, "sip.listen", "0-65535"},
		{"no transports", func(c *Config) { c.SIP.Transports = nil }, "sip.transports", "udp, tcp"},
		{"unknown transport", func(c *Config) { c.SIP.Transports = []string{"udp", "sctp"} }, "sip.transports[1]", `"sctp" is not a transport (allowed: udp, tcp)`},
		{"transport twice", func(c *Config) { c.SIP.Transports = []string{"udp", "udp"} }, "sip.transports[1]", "twice"},
		{"advertise with port", func(c *Config) { c.SIP.Advertise = "example.com:5060" }, "sip.advertise", "no port"},
		{"allow entry not an address", func(c *Config) { c.SIP.Allow = []string{"10.0.0.0/8", "pbx.local"} }, "sip.allow[1]", "CIDR"},
		{"allow bad prefix length", func(c *Config) { c.SIP.Allow = []string{"10.0.0.0/33"} }, "sip.allow[0]", "CIDR"},
		{"allow empty", func(c *Config) { c.SIP.Allow = nil }, "sip.allow", "0.0.0.0/0"},
		{"user agent two lines", func(c *Config) { c.SIP.UserAgent = "a\r\nX-Evil: 1" }, "sip.user_agent", "one line"},
		{"trunk without port", func(c *Config) { c.Trunk.Address = "pbx.example.com" }, "trunk.address", "host:port"},
		{"trunk without host", func(c *Config) { c.Trunk.Address = ":5060" }, "trunk.address", "host:port"},
		{"trunk port 0", func(c *Config) { c.Trunk.Address = "10.0.0.1:0" }, "trunk.address", "1-65535"},
		{"trunk transport", func(c *Config) { c.Trunk.Transport = "sctp" }, "trunk.transport", "allowed: udp, tcp, tls"},
		{"password without username", func(c *Config) { c.Trunk.Password = "x" }, "trunk.username", "trunk.password"},
		{"route regexp", func(c *Config) { c.Routes = []Route{{Match: "([0-9", Target: "sip:a@b"}} }, "routes[0].match", "not a regular expression"},
		{"route empty match", func(c *Config) { c.Routes = []Route{{Target: "sip:a@b"}} }, "routes[0].match", "empty"},
		{"route target scheme", func(c *Config) { c.Routes = []Route{{Match: "1", Target: "tel:123"}} }, "routes[0].target", `start with "sip:"`},
		{"route target no host", func(c *Config) { c.Routes = []Route{{Match: "1", Target: "sip:{number}@"}} }, "routes[0].target", "no valid host"},
		{"route target bad port", func(c *Config) { c.Routes = []Route{{Match: "1", Target: "sip:1@h:x"}} }, "routes[0].target", "port"},
		{"route transport", func(c *Config) { c.Routes = []Route{{Match: "1", Target: "sip:b", Transport: "ws"}} }, "routes[0].transport", "allowed: udp, tcp, tls"},
		{"second route", func(c *Config) {
			c.Routes = []Route{{Match: "1", Target: "sip:b"}, {Match: "2", Target: "b"}}
		}, "routes[1].target", "sip:"},
		{"max sessions 0", func(c *Config) { c.Calls.MaxSessions = 0 }, "calls.max_sessions", "at least 1"},
		{"retry after negative", func(c *Config) { c.Calls.RetryAfter = -time.Second }, "calls.retry_after", "negative"},
		{"retry after fraction", func(c *Config) { c.Calls.RetryAfter = 1500 * time.Millisecond }, "calls.retry_after", "whole seconds"},
		{"ring timeout 0", func(c *Config) { c.Calls.RingTimeout = 0 }, "calls.ring_timeout", "more than 0"},
		{"party refer unknown", func(c *Config) { c.Calls.PartyRefer = "pass" }, "calls.party_refer", "allowed: perform, relay, refuse"},
		{"ended retention negative", func(c *Config) { c.Calls.EndedRetention = -1 }, "calls.ended_retention", "negative"},
		{"transfer host with port", func(c *Config) { c.Calls.TransferHosts = []string{"10.0.0.1", "pbx.example.com:5060"} }, "calls.transfer_hosts[1]", "not an IP address or host name (no port"},
		{"transfer host a URI", func(c *Config) { c.Calls.TransferHosts = []string{"sip:pbx.example.com"} }, "calls.transfer_hosts[0]", "no scheme"},
		{"media ip", func(c *Config) { c.Media.IP = "localhost" }, "media.ip", "not an IP address"},
		{"media advertise", func(c *Config) { c.Media.Advertise = "media.example.com" }, "media.advertise", "not an IP address"},
		{"unspecified media ip needs advertise", func(c *Config) { c.Media.IP = "0.0.0.0" }, "media.advertise", "0.0.0.0"},
		{"rtp ports syntax", func(c *Config) { c.Media.RTPPorts = "20000:30000" }, "media.rtp_ports", "LO-HI"},
		{"rtp ports reversed", func(c *Config) { c.Media.RTPPorts = "30000-20001" }, "media.rtp_ports", "below"},
		{"rtp ports privileged", func(c *Config) { c.Media.RTPPorts = "1000-2001" }, "media.rtp_ports", "1024-65535"},
		{"rtp ports too high", func(c *Config) { c.Media.RTPPorts = "60000-70001" }, "media.rtp_ports", "1024-65535"},
		{"rtp ports odd size", func(c *Config) { c.Media.RTPPorts = "20000-30000" }, "media.rtp_ports", "even"},
		{"port rest negative", func(c *Config) { c.Media.PortRest = -1 }, "media.port_rest", "negative"},
		{"media timeout negative", func(c *Config) { c.Media.Timeout = -1 }, "media.timeout", "negative"},
		{"hold timeout negative", func(c *Config) { c.Media.HoldTimeout = -1 }, "media.hold_timeout", "negative"},
		{"latching", func(c *Config) { c.Media.Latching = "loose" }, "media.latching", "allowed: strict, nat"},
		{"trunk srtp", func(c *Config) { c.Trunk.SRTP = "on" }, "trunk.srtp", "allowed: off, best-effort, mandatory"},
		{"route srtp", func(c *Config) {
			c.Routes = []Route{{Match: "^1$", Target: "sip:{number}@192.0.2.1", SRTP: "yes"}}
		}, "routes[0].srtp", "allowed: off, best-effort, mandatory"},
		{"trunk large_over", func(c *Config) { c.Trunk.LargeOver = "tls" }, "trunk.large_over", "allowed: tcp, udp"},
		{"route large_over", func(c *Config) {
			c.Routes = []Route{{Match: "^1$", Target: "sip:{number}@192.0.2.1", LargeOver: "sctp"}}
		}, "routes[0].large_over", "allowed: tcp, udp"},
		{"srtp inbound", func(c *Config) { c.Media.SRTPInbound = "optional" }, "media.srtp_inbound", "allowed: accept, require, refuse"},
		{"srtp suites empty", func(c *Config) { c.Media.SRTPSuites = nil }, "media.srtp_suites", "at least one"},
		{"srtp suite unknown", func(c *Config) { c.Media.SRTPSuites = []string{"AES_256_CM_HMAC_SHA1_80"} },
			"media.srtp_suites[0]", "allowed: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM"},
		{"api listen", func(c *Config) { c.API.Listen = "8080" }, "api.listen", "host:port"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", "allowed: debug, info, warn, error"},
		{"log format", func(c *Config) { c.Log.Format = "text" }, "log.format", "allowed: console, json"},
		{"drain negative", func(c *Config) { c.Shutdown.DrainTimeout = -time.Second }, "shutdown.drain_timeout", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			errs := fieldErrors(cfg.Validate())
			if len(errs) != 1 {
				t.Fatalf("Validate() = %v, want exactly one error for %s", errs, tt.key)
			}
			if errs[0].Key != tt.key || !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("Validate() = %q, want key %s with %q", errs[0], tt.key, tt.msg)
			}
		})
	}
}

func TestValidateAcceptsReasonableValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"listen on all interfaces", func(c *Config) { c.SIP.Listen = ":5070" }},
		{"listen on any port", func(c *Config) { c.SIP.Listen = "127.0.0.1:0"; c.API.Listen = "127.0.0.1:0" }},
		{"listen on IPv6", func(c *Config) { c.SIP.Listen = "[::1]:5070" }},
		{"one transport", func(c *Config) { c.SIP.Transports = []string{"tcp"} }},
		{"bare addresses allowed", func(c *Config) { c.SIP.Allow = []string{"192.0.2.7", "2001:db8::1"} }},
		{"trunk by name", func(c *Config) { c.Trunk.Address = "pbx.example.com:5060"; c.Trunk.Transport = "tcp" }},
		{"trunk credentials", func(c *Config) { c.Trunk.Username, c.Trunk.Password = "u", "p" }},
		{"routes", func(c *Config) {
			c.Routes = []Route{
				{Match: `^9\d+$`, Target: "sip:{number}@192.0.2.20:5060", Transport: "tcp"},
				{Match: "^0$", Target: "sip:operator@pbx.example.com;transport=tcp"},
				{Match: ".*", Target: "sip:[2001:db8::1]:5062"},
				{Match: "1", Target: "sip:host.example"},
			}
		}},
		{"media on all interfaces with advertise", func(c *Config) { c.Media.IP = "0.0.0.0"; c.Media.Advertise = "192.0.2.5" }},
		{"smallest port range", func(c *Config) { c.Media.RTPPorts = "1024-1025" }},
		{"largest port range", func(c *Config) { c.Media.RTPPorts = "1024-65535" }},
		{"zero durations", func(c *Config) {
			c.Media.Timeout, c.Media.PortRest, c.Calls.EndedRetention, c.Shutdown.DrainTimeout, c.Calls.RetryAfter = 0, 0, 0, 0, 0
		}},
		{"json debug logs", func(c *Config) { c.Log.Level, c.Log.Format = "debug", "json" }},
		{"transfer hosts", func(c *Config) {
			c.Calls.TransferHosts = []string{"192.0.2.10", "pbx.example.com", "2001:db8::1", "[2001:db8::2]"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	cfg := Default()
	cfg.SIP.Listen = "nope"
	cfg.Trunk.Transport = "sctp"
	cfg.Media.RTPPorts = "1-2"
	cfg.Log.Level = "loud"
	var keys []string
	for _, e := range fieldErrors(cfg.Validate()) {
		keys = append(keys, e.Key)
	}
	want := []string{"sip.listen", "trunk.transport", "media.rtp_ports", "log.level"}
	if !slices.Equal(keys, want) {
		t.Errorf("error keys = %v, want %v", keys, want)
	}
}

// fieldErrors unpacks Validate's joined error.
func fieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	var out []*FieldError
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		panic("Validate must return errors.Join's error")
	}
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			panic("not a *FieldError: " + e.Error())
		}
		out = append(out, fe)
	}
	return out
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"20000-29999", 20000, 29999, true},
		{" 40000 - 40001 ", 40000, 40001, true},
		{"20000", 0, 0, false},
		{"a-b", 0, 0, false},
		{"20001-29999", 0, 0, false},
		{"20000-20000", 0, 0, false},
		{"-2-5", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := ParsePortRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestRedactedHidesThePasswordOnly(t *testing.T) {
	cfg := Default()
	cfg.Trunk.Username, cfg.Trunk.Password = "alice", "s3cret"
	r := cfg.Redacted()
	if r.Trunk.Password != "REDACTED" || r.Trunk.Username != "alice" {
		t.Errorf("Redacted().Trunk = %+v", r.Trunk)
	}
	if cfg.Trunk.Password != "s3cret" {
		t.Error("Redacted changed the original")
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("redacted YAML shows the password:\n%s", out)
	}
	if got := Default().Redacted(); !reflect.DeepEqual(got, Default()) {
		t.Errorf("an empty password must stay empty, got %q", got.Trunk.Password)
	}
}

func TestClosestSuggestsOnlyNearMisses(t *testing.T) {
	known := []string{"listen", "transports", "advertise", "allow", "user_agent"}
	tests := []struct{ in, want string }{
		{"listn", "listen"},
		{"user-agent", "user_agent"},
		{"transport", "transports"},
		{"alow", "allow"},
		{"foo", ""},
		{"advertised_host", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.in, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
