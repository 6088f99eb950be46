package dtmf

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Keys lists every DTMF key, in RFC 4733 §3.2 event-code order: the index of
// a key in Keys is its event code.
const Keys = "0123456789*#ABCD"

// AllowedKeys describes the accepted keys for error messages.
const AllowedKeys = "0-9, *, #, A-D"

// Sentinel errors; every error of the package wraps one of them.
var (
	// ErrInvalidArgument: a key or an encoder setting passed in is out of
	// range; the message names it and the allowed values.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrMalformed: a payload or body received from a peer cannot be read;
	// the message says what is wrong with it.
	ErrMalformed = errors.New("malformed DTMF")
)

// KeyError reports a key string that is empty or holds a character that is
// not a DTMF key. It wraps ErrInvalidArgument.
type KeyError struct {
	Field   string // always "key": the name of the operation argument
	Value   string // the input as given
	Pos     int    // byte offset of the bad character in Value; -1 when Value is empty
	Char    rune   // the bad character (utf8.RuneError if not valid UTF-8); 0 when Value is empty
	Allowed string // AllowedKeys
}

func (e *KeyError) Error() string {
	if e.Pos < 0 {
		return fmt.Sprintf("%s: empty; want one or more of %s", e.Field, e.Allowed)
	}
	return fmt.Sprintf("%s: character %q at position %d of %s is not a DTMF key (allowed: %s)",
		e.Field, e.Char, e.Pos, quoteShort(e.Value), e.Allowed)
}

// Unwrap makes errors.Is(err, ErrInvalidArgument) true.
func (e *KeyError) Unwrap() error { return ErrInvalidArgument }

func newKeyError(s string, pos int) *KeyError {
	e := &KeyError{Field: "key", Value: s, Pos: pos, Allowed: AllowedKeys}
	if pos >= 0 {
		e.Char, _ = utf8.DecodeRuneInString(s[pos:])
	} else {
		e.Pos = -1
	}
	return e
}

// ParseKeys checks a string of one or more DTMF keys and returns them with
// a-d upper-cased. An empty string or any other character (spaces included)
// is a *KeyError naming the character and its position.
func ParseKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, newKeyError(s, -1)
	}
	out := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		k, ok := normalizeKey(s[i])
		if !ok {
			return nil, newKeyError(s, i)
		}
		out[i] = k
	}
	return out, nil
}

// checkKeys is ParseKeys for keys that must already be normalised (Send's
// input), without copying.
func checkKeys(keys []byte) error {
	if len(keys) == 0 {
		return newKeyError("", -1)
	}
	for i, k := range keys {
		if _, ok := EventCode(k); !ok {
			return newKeyError(string(keys), i)
		}
	}
	return nil
}

// normalizeKey upper-cases a-d and reports whether c is a key.
func normalizeKey(c byte) (byte, bool) {
	if c >= 'a' && c <= 'd' {
		c -= 'a' - 'A'
	}
	return c, strings.IndexByte(Keys, c) >= 0
}

// EventCode returns the RFC 4733 §3.2 event code of a key: 0-9 for the
// digits, 10 for *, 11 for #, 12-15 for A-D. Only the bytes of Keys are keys
// (use ParseKeys to accept lower case).
func EventCode(key byte) (uint8, bool) {
	i := strings.IndexByte(Keys, key)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}

// KeyForEvent is the inverse of EventCode: the key of event codes 0-15, false
// for any other telephone event (flash, tones, RFC 4734).
func KeyForEvent(code uint8) (byte, bool) {
	if int(code) >= len(Keys) {
		return 0, false
	}
	return Keys[code], true
}

// quoteShort quotes s for an error message, cut short if it is long (input
// from outside can be anything).
func quoteShort[T string | []byte](s T) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
