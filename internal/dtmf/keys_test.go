package dtmf

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseKeysAcceptsEveryKeyAndUpperCasesLetters(t *testing.T) {
	tests := []struct{ in, want string }{
		{"5", "5"},
		{"1234567890*#", "1234567890*#"},
		{"ABCD", "ABCD"},
		{"abcd", "ABCD"},
		{"1a*B#", "1A*B#"},
		{Keys, Keys},
	}
	for _, tt := range tests {
		got, err := ParseKeys(tt.in)
		if err != nil {
			t.Errorf("ParseKeys(%q) error: %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("ParseKeys(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseKeysNamesTheBadCharacterAndItsPosition(t *testing.T) {
	tests := []struct {
		in      string
		pos     int
		char    rune
		message string // a part of Error() that must be there
	}{
		{in: "", pos: -1, char: 0, message: "key: empty"},
		{in: "x", pos: 0, char: 'x', message: `'x' at position 0`},
		{in: "12x4", pos: 2, char: 'x', message: `'x' at position 2`},
		{in: "12 4", pos: 2, char: ' ', message: `' ' at position 2`},
		{in: "1e", pos: 1, char: 'e', message: `'e' at position 1`},
		{in: "E", pos: 0, char: 'E', message: `'E'`},
		{in: "9é", pos: 1, char: 'é', message: `'é' at position 1`},
		{in: "1\xff", pos: 1, char: utf8.RuneError, message: "position 1"},
		{in: "+", pos: 0, char: '+', message: `'+'`},
	}
	for _, tt := range tests {
		got, err := ParseKeys(tt.in)
		if got != nil {
			t.Errorf("ParseKeys(%q) = %q, want nil with the error", tt.in, got)
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("ParseKeys(%q) error = %v, want a *KeyError", tt.in, err)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseKeys(%q) error does not wrap ErrInvalidArgument", tt.in)
		}
		if ke.Field != "key" || ke.Value != tt.in || ke.Pos != tt.pos || ke.Char != tt.char || ke.Allowed != AllowedKeys {
			t.Errorf("ParseKeys(%q) error = %+v, want Field key, Pos %d, Char %q, Allowed %q", tt.in, *ke, tt.pos, tt.char, AllowedKeys)
		}
		msg := err.Error()
		for _, part := range []string{"key", tt.message, "0-9, *, #, A-D"} {
			if !strings.Contains(msg, part) {
				t.Errorf("ParseKeys(%q) error %q does not contain %q", tt.in, msg, part)
			}
		}
	}
}

func TestKeyErrorMessageStaysShortForLongInput(t *testing.T) {
	_, err := ParseKeys(strings.Repeat("1", 1000) + "x")
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 1001-byte input = %q, want an error under 200 bytes", err)
	}
	if !strings.Contains(err.Error(), "position 1000") {
		t.Errorf("error %q does not name position 1000", err)
	}
}

func TestEventCodesFollowRFC4733Table(t *testing.T) {
	// RFC 4733 §3.2, Table 7.
	want := map[byte]uint8{
		'0': 0, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5, '6': 6, '7': 7, '8': 8, '9': 9,
		'*': 10, '#': 11, 'A': 12, 'B': 13, 'C': 14, 'D': 15,
	}
	for key, code := range want {
		got, ok := EventCode(key)
		if !ok || got != code {
			t.Errorf("EventCode(%q) = %d, %v; want %d, true", key, got, ok, code)
		}
		back, ok := KeyForEvent(code)
		if !ok || back != key {
			t.Errorf("KeyForEvent(%d) = %q, %v; want %q, true", code, back, ok, key)
		}
	}
	for _, key := range []byte{'a', 'd', 'E', ' ', 0, '/', ':', 0xff} {
		if code, ok := EventCode(key); ok {
			t.Errorf("EventCode(%q) = %d, true; want false", key, code)
		}
	}
	for _, code := range []uint8{16, 32, 255} {
		if key, ok := KeyForEvent(code); ok {
			t.Errorf("KeyForEvent(%d) = %q, true; want false", code, key)
		}
	}
}
