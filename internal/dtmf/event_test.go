package dtmf

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEventReadsTheRFC4733Layout(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    Event
	}{
		{"digit 5 in progress", []byte{0x05, 0x0a, 0x01, 0x40}, Event{Code: 5, Volume: 10, Duration: 320}},
		{"# ended", []byte{0x0b, 0x8a, 0x03, 0x20}, Event{Code: 11, End: true, Volume: 10, Duration: 800}},
		{"R bit ignored", []byte{0x01, 0x4a, 0x00, 0xa0}, Event{Code: 1, Volume: 10, Duration: 160}},
		{"all bits", []byte{0xff, 0xff, 0xff, 0xff}, Event{Code: 255, End: true, Volume: 63, Duration: 0xffff}},
		{"padding ignored", []byte{0x0f, 0x00, 0x00, 0x00, 0, 0, 0, 4}, Event{Code: 15}},
	}
	for _, tt := range tests {
		got, err := ParseEvent(tt.payload)
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseEvent(% x) = %+v, %v; want %+v", tt.name, tt.payload, got, err, tt.want)
		}
	}
}

func TestParseEventRejectsShortPayloads(t *testing.T) {
	for _, p := range [][]byte{nil, {}, {1}, {1, 2, 3}} {
		_, err := ParseEvent(p)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "want 4") {
			t.Errorf("ParseEvent(% x) error = %v, want ErrMalformed saying 4 bytes are needed", p, err)
		}
	}
}

func TestEventPayloadRoundTrips(t *testing.T) {
	for _, ev := range []Event{
		{Code: 0},
		{Code: 10, End: true, Volume: 10, Duration: 800},
		{Code: 15, Volume: 63, Duration: 0xffff},
	} {
		p := ev.Payload()
		got, err := ParseEvent(p[:])
		if err != nil || got != ev {
			t.Errorf("ParseEvent(%+v.Payload() = % x) = %+v, %v", ev, p, got, err)
		}
	}
	if p := (Event{Volume: 0xff}).Payload(); p[1] != 0x3f {
		t.Errorf("Payload with Volume 0xff: byte 1 = %#x, want 0x3f (E and R clear)", p[1])
	}
}
