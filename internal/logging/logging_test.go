package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestNewRejectsUnknownLevelAndFormat(t *testing.T) {
	tests := []struct {
		level, format, want string
	}{
		{"verbose", "console", `level "verbose" is not one of debug, info, warn, error`},
		{"info", "text", `format "text" is not one of console, json`},
		{"", "", "level"},
	}
	for _, tt := range tests {
		if _, err := New(tt.level, tt.format); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %q) = %v, want an error containing %q", tt.level, tt.format, err, tt.want)
		}
	}
}

func TestNewAcceptsEveryLevelAndFormat(t *testing.T) {
	for _, l := range Levels {
		for _, f := range Formats {
			if _, err := New(l, f); err != nil {
				t.Errorf("New(%q, %q): %v", l, f, err)
			}
		}
	}
}

func TestJSONLinesCarrySessionAndCallID(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("info", "json", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.With(Session("s-1")).Info("answered", CallID("abc@host"))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["session"] != "s-1" || line["call_id"] != "abc@host" || line["msg"] != "answered" || line["level"] != "info" {
		t.Errorf("line = %v", line)
	}
	if _, ok := line["time"]; !ok {
		t.Errorf("line has no time: %v", line)
	}
}

func TestLevelFiltersLowerLines(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("warn", "console", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", Session("s-2"))
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") || !strings.Contains(out, `"session": "s-2"`) {
		t.Errorf("output = %q", out)
	}
}
