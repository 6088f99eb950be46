package main

import (
	"bytes"
	"strings"
	"testing"
)

// `callctl config check` refuses exactly what `serve` refuses, with the
// same message and exit code 2 (issue 13, point 5): client and role errors
// (checked by serve as it builds the API's token table) and misspelt
// CALLCTL_* variables included.
func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	const hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string // in both commands' stderr
	}{
		{name: "token hash", file: "clients:\n  - name: sup\n    token_hash: nothex\n",
			want: []string{"clients[0].token_hash", `"sha256:" followed by 64 lowercase hex digits`}},
		{name: "misspelt privilege", file: "clients:\n  - name: sup\n    token_hash: " + hash + "\n    privileges: [sessions.hodl]\n",
			want: []string{"clients[0].privileges[0]", `"sessions.hodl" is not a privilege (allowed: sessions.view`}},
		{name: "undefined role", file: "clients:\n  - name: sup\n    token_hash: " + hash + "\n    roles: [boss]\n",
			want: []string{"clients[0].roles[0]", `"boss" is not a role`}},
		{name: "role with a misspelt privilege", file: "roles:\n  - name: r1\n    privileges: [audit.veiw]\n",
			want: []string{"roles[0].privileges[0]", `"audit.veiw" is not a privilege`}},
		{name: "duplicate client", file: "clients:\n  - name: a\n    token_hash: " + hash + "\n  - name: a\n    token_hash: " + hash + "\n",
			want: []string{"clients[1]"}},
		{name: "bad scope", file: "clients:\n  - name: sup\n    token_hash: " + hash + "\n    scope: [\"(\"]\n",
			want: []string{"clients[0].scope[0]"}},
		{name: "misspelt variable", environ: []string{"CALLCTL_SIP_LISTN=127.0.0.1:5070"},
			want: []string{"CALLCTL_SIP_LISTN is not a callctl variable; did you mean CALLCTL_SIP_LISTEN?"}},
		{name: "unknown variable", environ: []string{"CALLCTL_WHATEVER=1"},
			want: []string{"CALLCTL_WHATEVER is not a callctl variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.file != "" {
				args = []string{"--config", writeConfig(t, tt.file)}
			}
			for _, cmd := range [][]string{{"config", "check"}, {"serve"}} {
				var stdout, stderr bytes.Buffer
				if code := run(append(cmd, args...), tt.environ, &stdout, &stderr); code != 2 {
					t.Errorf("%s: exit %d; want 2\nstdout: %s\nstderr: %s", strings.Join(cmd, " "), code, stdout.String(), stderr.String())
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("%s: stderr does not say %q:\n%s", strings.Join(cmd, " "), w, stderr.String())
					}
				}
				if strings.Contains(stdout.String(), "ok") {
					t.Errorf("%s printed ok", strings.Join(cmd, " "))
				}
			}
		})
	}
}
