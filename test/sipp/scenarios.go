// Package sipp holds callctl's SIPp scenarios: the XML files beside this one,
// each with a header comment saying what it checks. They are embedded, so a
// test gets a scenario with Scenario(t, name) wherever the test binary runs.
//
// Conventions shared by the files: the UAC dials [service] at the remote
// address and offers PCMU on [media_port]; in-dialog requests go to
// [next_url] with [routes] learnt from the 200 (rrs="true"), so the same file
// works against a SIPp UAS directly and through callctl; RTP is streamed from
// tone.raw in the working directory (peers.ToneFile); -key values ([duration])
// are plain substitutions. scenarios_test.go pairs every UAC with a UAS,
// directly, to prove the files themselves are right.
package sipp

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

//go:embed *.xml
var files embed.FS

// Scenario writes the named scenario (e.g. "uac_pcmu_rtp.xml") into a new
// temporary directory of the test and returns its path.
func Scenario(t testing.TB, name string) string {
	t.Helper()
	data, err := Load(name)
	if err != nil {
		t.Fatalf("sipp: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	return path
}

// Load returns the named scenario's XML.
func Load(name string) ([]byte, error) {
	return files.ReadFile(name)
}

// Names lists the scenario files.
func Names() []string {
	names, _ := fs.Glob(files, "*.xml")
	return names
}
