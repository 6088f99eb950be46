package pbx

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// The shipped Kamailio configuration passes `kamailio -c` as it is (its
// defaults), with the defines the acceptance test overrides, and with the
// dispatcher section for several callctl nodes and the SIP dump switched on.
func TestShippedKamailioConfigPassesKamailioCheck(t *testing.T) {
	bin := tool(t, "kamailio", "kamailio")
	cfg := repoPath(t, "configs/kamailio/kamailio.cfg")
	for _, tc := range []struct {
		name    string
		defines []string
	}{
		{"defaults", nil},
		{"site defines", []string{"LISTEN_IP=127.0.0.1", "SIP_PORT=15060", `CALLCTL_IP="127.0.0.2"`, "CALLCTL_PORT=15070"}},
		{"dispatcher and sipdump", []string{"WITH_DISPATCHER", `DISPATCHER_LIST="` + repoPath(t, "configs/kamailio/dispatcher.list") + `"`,
			"WITH_SIPDUMP", `SIPDUMP_DIR="` + t.TempDir() + `"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-c", "-f", cfg}
			for _, d := range tc.defines {
				args = append(args, "-A", d)
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("kamailio %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// docker-compose.yml passes `docker-compose config -q` (syntax, variables,
// references; no engine needed), and every callctl environment variable it
// sets is one callctl reads.
func TestDockerComposeFileIsValid(t *testing.T) {
	bin := tool(t, "docker-compose", "docker-compose")
	root := repoPath(t, ".")
	cmd := exec.Command(bin, "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
	cmd.Dir = root
	// An empty HOME: no docker configuration of the user's is read.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config -q: %v\n%s", err, out)
	}

	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, "docker-compose.yml", &compose)
	for name, svc := range compose.Services {
		for env := range svc.Environment {
			expectCallctlEnv(t, "docker-compose.yml service "+name, env)
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(repoPath(t, src)); err != nil {
					t.Errorf("docker-compose.yml service %s mounts %s, which does not exist", name, src)
				}
			}
		}
	}
}

// The Asterisk files of the lab and docker-compose.yml agree on the
// addresses: callctl's aor contact and identify match are callctl's
// address in the compose network, and each phone's is its service's.
func TestAsteriskLabAddressesMatchDockerCompose(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Networks map[string]struct {
				IPv4 string `yaml:"ipv4_address"`
			} `yaml:"networks"`
		} `yaml:"services"`
	}
	readYAML(t, "docker-compose.yml", &compose)
	ip := func(service string) string {
		for _, n := range compose.Services[service].Networks {
			return n.IPv4
		}
		t.Fatalf("docker-compose.yml: service %s has no ipv4_address", service)
		return ""
	}
	for _, c := range []struct {
		file, section, want string
	}{
		{"configs/asterisk/pjsip_callctl.conf", "callctl", ip("callctl")},
		{"configs/asterisk/pjsip.conf", "2001", ip("phone-2001")},
		{"configs/asterisk/pjsip.conf", "3002", ip("phone-3002")},
	} {
		opts := asteriskSection(t, c.file, c.section)
		if m := opts["match"]; m != c.want {
			t.Errorf("%s [%s] identify match=%q; want %q (docker-compose.yml)", c.file, c.section, m, c.want)
		}
		if ct := opts["contact"]; !strings.Contains(ct, "@"+c.want+":") && !strings.Contains(ct, ":"+c.want+":") {
			t.Errorf("%s [%s] aor contact=%q; want the address %s (docker-compose.yml)", c.file, c.section, ct, c.want)
		}
	}
	// callctl's trunk in the lab is Asterisk.
	var env struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	readYAML(t, "docker-compose.yml", &env)
	if got, want := env.Services["callctl"].Environment["CALLCTL_TRUNK_ADDRESS"], ip("asterisk")+":5060"; got != want {
		t.Errorf("docker-compose.yml: callctl's CALLCTL_TRUNK_ADDRESS %q; want Asterisk, %q", got, want)
	}
	// Endpoint callctl's context and transfer context exist in the dialplan.
	ep := asteriskSection(t, "configs/asterisk/pjsip_callctl.conf", "callctl")
	contexts := asteriskContexts(t, "configs/asterisk/extensions_callctl.conf")
	for _, want := range []string{ep["context"], strings.TrimPrefix(ep["set_var"], "TRANSFER_CONTEXT=")} {
		if !contexts[want] {
			t.Errorf("endpoint callctl names context %q, which extensions_callctl.conf does not define (it has %v)", want, contexts)
		}
	}
}

// asteriskSection merges the options of every section named name (aor,
// endpoint and identify share it) of an Asterisk .conf file.
func asteriskSection(t *testing.T, file, name string) map[string]string {
	t.Helper()
	opts := map[string]string{}
	var in bool
	forEachConfLine(t, file, func(line string) {
		if strings.HasPrefix(line, "[") {
			sec, _, _ := strings.Cut(strings.TrimPrefix(line, "["), "]")
			in = sec == name
			return
		}
		if k, v, ok := strings.Cut(line, "="); in && ok {
			opts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	})
	if len(opts) == 0 {
		t.Fatalf("%s has no section [%s]", file, name)
	}
	return opts
}

func asteriskContexts(t *testing.T, file string) map[string]bool {
	t.Helper()
	contexts := map[string]bool{}
	forEachConfLine(t, file, func(line string) {
		if strings.HasPrefix(line, "[") {
			sec, _, _ := strings.Cut(strings.TrimPrefix(line, "["), "]")
			contexts[sec] = true
		}
	})
	return contexts
}

// forEachConfLine calls fn with each line of an Asterisk .conf file, its
// ;comment removed and trimmed, skipping empty lines.
func forEachConfLine(t *testing.T, file string, fn func(string)) {
	t.Helper()
	f, err := os.Open(repoPath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), ";")
		if line = strings.TrimSpace(line); line != "" {
			fn(line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// The Dockerfile is multi-stage, builds a static binary, runs it as a
// non-root user, and its health check asks /healthz, which a running callctl
// answers 200 without a token; the files it copies exist.
func TestDockerfileBuildsStaticBinaryRunsUnprivilegedWithHealthCheck(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var from, user, health, build []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "FROM":
			from = append(from, line)
			user = nil // USER applies to the stage it is in
		case "USER":
			user = append(user, f[1])
		case "HEALTHCHECK":
			health = append(health, line)
		case "RUN":
			if strings.Contains(line, "go build") {
				build = append(build, line)
			}
		case "COPY":
			if !strings.HasPrefix(f[1], "--from") {
				for _, src := range f[1 : len(f)-1] {
					if matches, _ := filepath.Glob(repoPath(t, src)); len(matches) == 0 {
						t.Errorf("Dockerfile copies %s, which does not exist", src)
					}
				}
			}
		}
	}
	if len(from) < 2 {
		t.Errorf("Dockerfile has %d stages; want a build stage and a runtime stage", len(from))
	}
	if len(build) != 1 || !strings.Contains(build[0], "CGO_ENABLED=0") {
		t.Errorf("Dockerfile go build lines %q; want one, with CGO_ENABLED=0 (a static binary)", build)
	}
	if len(user) == 0 || user[len(user)-1] == "root" || strings.HasPrefix(user[len(user)-1], "0") {
		t.Errorf("the runtime stage's USER is %q; want a non-root user", user)
	}
	if len(health) != 1 || !strings.Contains(string(data), "/healthz") {
		t.Errorf("Dockerfile HEALTHCHECK %q; want one, asking /healthz", health)
	}

	// The health check needs no token: callctl answers /healthz to anyone.
	cc := startCallctl(t, peers.FreeUDPPort(t), "127.0.0.1:5060", nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	var res *http.Response
	if !callctltest.Eventually(5*time.Second, func() bool {
		res, err = client.Get("http://" + cc.cfg.API.Listen + "/healthz")
		return err == nil
	}) {
		t.Fatalf("GET /healthz: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz without a token: %s; want 200 OK", res.Status)
	}
}

// Every FreeSWITCH file is well-formed XML (FreeSWITCH refuses to load the
// whole configuration otherwise).
func TestFreeSWITCHFilesAreWellFormedXML(t *testing.T) {
	root := repoPath(t, "configs/freeswitch")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".xml") {
			return err
		}
		n++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := xml.NewDecoder(f)
		for {
			if _, err := dec.Token(); err == io.EOF {
				return nil
			} else if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("found %d XML files under configs/freeswitch; want the gateway and three dialplan files", n)
	}
}

// The systemd unit carries the hardening options, passes `systemd-analyze
// verify` (with ExecStart pointed at an existing binary), and its
// environment names settings callctl reads.
func TestSystemdUnitIsHardenedAndVerifies(t *testing.T) {
	unit := repoPath(t, "configs/systemd/callctl.service")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			directives[k] = append(directives[k], v)
		}
	}
	for k, want := range map[string]string{
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"CapabilityBoundingSet": "",
		"AmbientCapabilities":   "",
		"ReadWritePaths":        "/var/lib/callctl",
		"User":                  "callctl",
	} {
		if got, ok := directives[k]; !ok || !slices.Contains(got, want) {
			t.Errorf("callctl.service: %s=%v; want %s=%s", k, got, k, want)
		}
	}
	if _, ok := directives["LimitNOFILE"]; !ok {
		t.Errorf("callctl.service has no LimitNOFILE")
	}
	for _, env := range directives["Environment"] {
		name, _, _ := strings.Cut(env, "=")
		expectCallctlEnv(t, "callctl.service", name)
	}

	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not installed: apt-get install -y --no-install-recommends systemd (scripts/install-test-deps.sh does)")
	}
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "callctl.service")
	if err := os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/callctl", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", copyUnit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify callctl.service: %v\n%s", err, out)
	}
}

// docs/deploy.md can be followed line by line: every file under configs/
// it names exists, it names every Asterisk file shipped, every callctl
// setting it names (`section.key`, a key in a yaml block, or a
// CALLCTL_SECTION_KEY variable) is a key of configs/callctl.yaml, and
// every relative link points at a file of the repository.
func TestDeployDocNamesOnlyFilesAndSettingsThatExist(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "docs/deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	keys := callctlKeys(t)

	// Files under configs/.
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bconfigs/[A-Za-z0-9_./-]*[A-Za-z0-9_/-]`).FindAllString(doc, -1) {
		named[strings.TrimSuffix(m, "/")] = true
	}
	for p := range named {
		if _, err := os.Stat(repoPath(t, p)); err != nil {
			t.Errorf("docs/deploy.md names %s, which does not exist", p)
		}
	}
	asterisk, _ := filepath.Glob(repoPath(t, "configs/asterisk/*"))
	if len(asterisk) == 0 {
		t.Fatal("configs/asterisk/ is empty")
	}
	for _, f := range asterisk {
		if p := "configs/asterisk/" + filepath.Base(f); !named[p] {
			t.Errorf("docs/deploy.md does not name %s: the Asterisk steps must use every shipped file", p)
		}
	}

	// Settings written `section.key`: anything dotted in backticks that is
	// not a file name, a privilege (sessions.*, audit.view, config.reload), a kernel sysctl (net.*) or a
	// Kamailio/Asterisk name is a setting.
	notSettings := regexp.MustCompile(`\.(cfg|conf|yaml|yml|xml|service|md|list|db|env|crt|key|pem|so|go)$|^sessions\.|^audit\.view$|^config\.reload$|^net\.`)
	for _, m := range regexp.MustCompile("`([a-z][a-z0-9_]*(?:\\.[a-z][a-z0-9_]*)+)`").FindAllStringSubmatch(doc, -1) {
		name := m[1]
		if notSettings.MatchString(name) {
			continue
		}
		if !keys[name] {
			t.Errorf("docs/deploy.md names the setting `%s`, which configs/callctl.yaml does not have", name)
		}
	}
	// Settings as single words in backticks that are top-level keys.
	for _, m := range regexp.MustCompile("`(routes|clients|roles)`").FindAllStringSubmatch(doc, -1) {
		if !keys[m[1]] {
			t.Errorf("docs/deploy.md names `%s`, which configs/callctl.yaml does not have", m[1])
		}
	}

	// Keys of the callctl yaml examples.
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(block[1]), &node); err != nil {
			t.Errorf("docs/deploy.md: a yaml block does not parse: %v\n%s", err, block[1])
			continue
		}
		for _, k := range yamlKeys(&node, "") {
			if !keys[k] {
				t.Errorf("docs/deploy.md: yaml example sets %s, which configs/callctl.yaml does not have", k)
			}
		}
	}

	// Environment variables; the Kamailio section's CALLCTL_IP and
	// CALLCTL_PORT are defines of the shipped kamailio.cfg instead.
	kamailioCfg, err := os.ReadFile(repoPath(t, "configs/kamailio/kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`CALLCTL_[A-Z0-9_]+`).FindAllString(doc, -1) {
		if strings.Contains(string(kamailioCfg), "#!define "+m+" ") {
			continue
		}
		expectCallctlEnv(t, "docs/deploy.md", m)
	}

	// Relative links, e.g. [text](../configs/...), (../bench/README.md) is
	// being written beside this work and is allowed to be missing.
	for _, m := range regexp.MustCompile(`\]\((\.\./[^)#]+)\)`).FindAllStringSubmatch(doc, -1) {
		rel := strings.TrimPrefix(m[1], "../")
		if rel == "bench/README.md" {
			continue
		}
		if _, err := os.Stat(repoPath(t, rel)); err != nil {
			t.Errorf("docs/deploy.md links to %s, which does not exist", m[1])
		}
	}
}

// callctlKeys is every key path of configs/callctl.yaml: "sip",
// "sip.listen", ..., "routes", "admin.token".
func callctlKeys(t *testing.T) map[string]bool {
	t.Helper()
	var node yaml.Node
	readYAML(t, "configs/callctl.yaml", &node)
	keys := map[string]bool{}
	for _, k := range yamlKeys(&node, "") {
		keys[k] = true
	}
	if !keys["sip.listen"] || !keys["media.rtp_ports"] {
		t.Fatalf("configs/callctl.yaml parsed to keys %v; want sip.listen, media.rtp_ports, ...", keys)
	}
	return keys
}

// yamlKeys lists the dotted paths of every mapping key under n, not
// descending into sequences.
func yamlKeys(n *yaml.Node, prefix string) []string {
	switch n.Kind {
	case yaml.DocumentNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, yamlKeys(c, prefix)...)
		}
		return out
	case yaml.MappingNode:
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix != "" {
				k = prefix + "." + k
			}
			out = append(out, k)
			out = append(out, yamlKeys(n.Content[i+1], k)...)
		}
		return out
	}
	return nil
}

// expectCallctlEnv checks that a CALLCTL_ variable is one callctl reads: a
// setting's (config.EnvVars), or one of the few others.
func expectCallctlEnv(t *testing.T, where, name string) {
	t.Helper()
	if !strings.HasPrefix(name, config.EnvPrefix) {
		return
	}
	others := []string{"CALLCTL_CONFIG", "CALLCTL_TOKEN", "CALLCTL_API_URL"}
	if !slices.Contains(config.EnvVars(), name) && !slices.Contains(others, name) {
		t.Errorf("%s uses %s, which callctl does not read (settings' variables: %s)", where, name, strings.Join(config.EnvVars(), " "))
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, fmt.Errorf("yaml: %w", err))
	}
}
