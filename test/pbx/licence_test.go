package pbx

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// callctl is Apache-2.0 (issue 13, point 1): LICENSE holds the licence's
// text, go.mod and the SDK carry the SPDX identifier, and NOTICE keeps the
// notice of every direct dependency whose module ships one (Apache-2.0,
// section 4(d)).
func TestLicenceAndTheDependenciesNotices(t *testing.T) {
	licence, err := os.ReadFile(repoPath(t, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS"} {
		if !bytes.Contains(licence, []byte(want)) {
			t.Errorf("LICENSE has no %q: not the Apache License 2.0's text", want)
		}
	}
	for _, f := range []string{"go.mod", "web/sdk/callctl.js", "web/sdk/callctl.d.ts"} {
		data, err := os.ReadFile(repoPath(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("SPDX-License-Identifier: Apache-2.0")) {
			t.Errorf("%s has no SPDX-License-Identifier: Apache-2.0", f)
		}
	}

	notice, err := os.ReadFile(repoPath(t, "NOTICE"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{if not .Indirect}}{{.Path}}\t{{.Dir}}{{end}}", "all")
	cmd.Dir = repoPath(t, ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	direct := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, dir, ok := strings.Cut(sc.Text(), "\t")
		if !ok || path == "github.com/callctl/callctl" {
			continue
		}
		direct++
		if dir == "" {
			t.Errorf("module %s is not downloaded; run go mod download", path)
			continue
		}
		notices, _ := filepath.Glob(filepath.Join(dir, "NOTICE*"))
		for _, n := range notices {
			text, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(notice, []byte(path)) {
				t.Errorf("NOTICE does not name %s, whose module ships %s", path, filepath.Base(n))
			}
			if first, _, _ := strings.Cut(strings.TrimSpace(string(text)), "\n"); !bytes.Contains(notice, []byte(first)) {
				t.Errorf("NOTICE does not keep %s's notice (its first line %q)", path, first)
			}
		}
	}
	if direct < 10 {
		t.Errorf("go list found %d direct dependencies; want the module's (20 or so)", direct)
	}
}
