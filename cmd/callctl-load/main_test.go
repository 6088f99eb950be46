package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageErrorsExitTwoAndSayWhy(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-target", "nowhere"}, "Config.Target"},
		{[]string{"-calls", "1", "-dtmf", "x"}, "Config.DTMF"},
		{[]string{"-inproc", "-target-is-uas", "-calls", "1"}, "exclude each other"},
		{[]string{"-flood-source", "nowhere"}, "FloodConfig.Source"},
		{[]string{"-flood-source", "127.0.0.5", "-flood-garbage", "nonsense"}, "unknown kind"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("callctl-load %v: exit %d, stderr %q; want 2 and a message containing %q", c.args, code, errOut.String(), c.want)
		}
	}
}
