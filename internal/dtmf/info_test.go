package dtmf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormatRelayWritesSignalAndDurationInMilliseconds(t *testing.T) {
	tests := []struct {
		key  byte
		dur  time.Duration
		want string
	}{
		{'5', 100 * ms, "Signal=5\r\nDuration=100\r\n"},
		{'*', 250 * ms, "Signal=*\r\nDuration=250\r\n"},
		{'#', 160 * ms, "Signal=#\r\nDuration=160\r\n"},
		{'d', 100 * ms, "Signal=D\r\nDuration=100\r\n"},
		{'1', 0, "Signal=1\r\nDuration=100\r\n"},
		{'1', -time.Second, "Signal=1\r\nDuration=100\r\n"},
		{'1', 1499 * time.Microsecond, "Signal=1\r\nDuration=1\r\n"},
		{'1', 1500 * time.Microsecond, "Signal=1\r\nDuration=2\r\n"},
		{'1', time.Microsecond, "Signal=1\r\nDuration=1\r\n"},
		{'0', 10 * time.Second, "Signal=0\r\nDuration=10000\r\n"},
	}
	for _, tt := range tests {
		if got := string(FormatRelay(tt.key, tt.dur)); got != tt.want {
			t.Errorf("FormatRelay(%q, %v) = %q, want %q", tt.key, tt.dur, got, tt.want)
		}
	}
}

func TestParseRelayReadsWhatSendersWrite(t *testing.T) {
	tests := []struct {
		name string
		body string
		key  byte
		dur  time.Duration
	}{
		{"Cisco", "Signal=5\r\nDuration=160\r\n", '5', 160 * ms},
		{"no final newline", "Signal=5\r\nDuration=160", '5', 160 * ms},
		{"LF only", "Signal=#\nDuration=250\n", '#', 250 * ms},
		{"spaces", "  Signal = * \r\n Duration= 100 \r\n", '*', 100 * ms},
		{"case of names", "signal=1\r\nDURATION=90\r\n", '1', 90 * ms},
		{"lower-case letter", "Signal=b\r\nDuration=100\r\n", 'B', 100 * ms},
		{"10 is star", "Signal=10\r\nDuration=100\r\n", '*', 100 * ms},
		{"11 is pound", "Signal=11\r\nDuration=100\r\n", '#', 100 * ms},
		{"12 is A", "Signal=12\r\n", 'A', 0},
		{"15 is D", "Signal=15\r\n", 'D', 0},
		{"no Duration", "Signal=7\r\n", '7', 0},
		{"Duration first", "Duration=300\r\nSignal=3\r\n", '3', 300 * ms},
		{"blank lines and unknown names", "\r\nSignal=4\r\n\r\nVolume=10\r\nDuration=120\r\n\r\n", '4', 120 * ms},
		{"tabs", "Signal=\t9\t\r\n", '9', 0},
	}
	for _, tt := range tests {
		key, dur, err := ParseRelay([]byte(tt.body))
		if err != nil || key != tt.key || dur != tt.dur {
			t.Errorf("%s: ParseRelay(%q) = %q, %v, %v; want %q, %v", tt.name, tt.body, key, dur, err, tt.key, tt.dur)
		}
	}
}

func TestParseRelaySaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "no Signal line"},
		{"only Duration", "Duration=100\r\n", "no Signal line"},
		{"bad key", "Signal=x\r\n", `line 1: signal "x" is not a DTMF key (allowed: 0-9, *, #, A-D, or 10-15`},
		{"empty key", "Signal=\r\n", `signal "" is not a DTMF key`},
		{"code out of range", "Signal=16\r\n", `signal "16"`},
		{"two keys", "Signal=45\r\n", `signal "45"`},
		{"hook flash", "Signal=!\r\n", "hook flash"},
		{"not name=value", "Signal=1\r\nhello\r\n", `line 2 "hello" is not name=value`},
		{"bad duration", "Signal=1\r\nDuration=1.5\r\n", `line 2: Duration "1.5" is not a whole number of milliseconds`},
		{"negative duration", "Signal=1\r\nDuration=-100\r\n", `Duration "-100"`},
		{"two Signals", "Signal=1\r\nSignal=2\r\n", "line 2: a second Signal line"},
		{"two Durations", "Signal=1\r\nDuration=1\nDuration=2\n", "line 3: a second Duration line"},
		{"long junk", strings.Repeat("z", 5000), "is not name=value"},
	}
	for _, tt := range tests {
		key, dur, err := ParseRelay([]byte(tt.body))
		if err == nil || !errors.Is(err, ErrMalformed) || key != 0 || dur != 0 {
			t.Errorf("%s: ParseRelay(%q) = %q, %v, %v; want an ErrMalformed error", tt.name, tt.body, key, dur, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), ContentTypeRelay) {
			t.Errorf("%s: error %q, want it to name %s and say %q", tt.name, err, ContentTypeRelay, tt.want)
		}
		if len(err.Error()) > 300 {
			t.Errorf("%s: error is %d bytes long, want it short", tt.name, len(err.Error()))
		}
	}
}

func TestParseDTMFBodyReadsOneKey(t *testing.T) {
	good := map[string]byte{"5": '5', "5\r\n": '5', " # ": '#', "a": 'A', "10": '*', "\n0\n": '0'}
	for body, want := range good {
		if key, err := ParseDTMFBody([]byte(body)); err != nil || key != want {
			t.Errorf("ParseDTMFBody(%q) = %q, %v; want %q", body, key, err, want)
		}
	}
	for _, body := range []string{"", "  ", "55", "x", "Signal=5", "!"} {
		_, err := ParseDTMFBody([]byte(body))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), ContentTypeDTMF) {
			t.Errorf("ParseDTMFBody(%q) error = %v, want ErrMalformed naming %s", body, err, ContentTypeDTMF)
		}
	}
}
