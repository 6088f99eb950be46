package dtmf

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Content types of the SIP INFO bodies this package reads and writes.
const (
	ContentTypeRelay = "application/dtmf-relay" // "Signal=5\r\nDuration=100\r\n" (Cisco, Asterisk, FreeSWITCH)
	ContentTypeDTMF  = "application/dtmf"       // just the key: "5"
)

// FormatRelay writes an application/dtmf-relay body for one key: its Signal
// line and its Duration in milliseconds, rounded (1 to 2^32-1); a duration
// of 0 or less becomes DefaultDuration. key should come from ParseKeys (a-d are
// upper-cased here).
func FormatRelay(key byte, duration time.Duration) []byte {
	if k, ok := normalizeKey(key); ok {
		key = k
	}
	if duration <= 0 {
		duration = DefaultDuration
	}
	ms := int64(duration / time.Millisecond)
	if duration%time.Millisecond >= time.Millisecond/2 {
		ms++
	}
	ms = min(max(ms, 1), math.MaxUint32) // ParseRelay reads up to 32 bits
	b := make([]byte, 0, len("Signal=5\r\nDuration=100\r\n")+4)
	b = append(b, "Signal="...)
	b = append(b, key)
	b = append(b, "\r\nDuration="...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, "\r\n"...)
}

// ParseRelay reads an application/dtmf-relay body: "name=value" lines, ended
// by CRLF or LF, names in any case, spaces around names and values
// ignored, unknown names skipped. Signal is required: a key (a-d accepted),
// or 10-15, which some senders use for *, #, A-D (the RFC 4733 event codes).
// Duration is optional, whole milliseconds; duration is 0 without it. Errors
// wrap ErrMalformed and say which line is wrong.
func ParseRelay(body []byte) (key byte, duration time.Duration, err error) {
	var haveSignal, haveDuration bool
	for n, rest := 1, body; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		name, value, found := bytes.Cut(line, []byte("="))
		if !found {
			return 0, 0, relayError("line %d %s is not name=value", n, quoteShort(line))
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Signal")):
			if haveSignal {
				return 0, 0, relayError("line %d: a second Signal line", n)
			}
			haveSignal = true
			if key, err = parseSignal(value); err != nil {
				return 0, 0, relayError("line %d: %v", n, err)
			}
		case bytes.EqualFold(name, []byte("Duration")):
			if haveDuration {
				return 0, 0, relayError("line %d: a second Duration line", n)
			}
			haveDuration = true
			ms, perr := strconv.ParseUint(string(value), 10, 32)
			if perr != nil {
				return 0, 0, relayError("line %d: Duration %s is not a whole number of milliseconds (0-4294967295)", n, quoteShort(value))
			}
			duration = time.Duration(ms) * time.Millisecond
		}
	}
	if !haveSignal {
		return 0, 0, relayError("no Signal line in %s", quoteShort(body))
	}
	return key, duration, nil
}

func relayError(format string, args ...any) error {
	return fmt.Errorf("dtmf: %s body: %s: %w", ContentTypeRelay, fmt.Sprintf(format, args...), ErrMalformed)
}

// ParseDTMFBody reads an application/dtmf body: one key (a-d accepted, or
// 10-15 as in ParseRelay), surrounding white space ignored. Errors wrap
// ErrMalformed.
func ParseDTMFBody(body []byte) (key byte, err error) {
	key, err = parseSignal(bytes.TrimSpace(body))
	if err != nil {
		return 0, fmt.Errorf("dtmf: %s body: %v: %w", ContentTypeDTMF, err, ErrMalformed)
	}
	return key, nil
}

// parseSignal reads one key, or an event code 10-15 written in decimal.
func parseSignal(v []byte) (byte, error) {
	switch {
	case len(v) == 1:
		if k, ok := normalizeKey(v[0]); ok {
			return k, nil
		}
		if v[0] == '!' {
			return 0, fmt.Errorf("signal \"!\" is a hook flash, not a DTMF key")
		}
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return Keys[10+v[1]-'0'], nil
	}
	return 0, fmt.Errorf("signal %s is not a DTMF key (allowed: %s, or 10-15 for * # A-D)", quoteShort(v), AllowedKeys)
}
