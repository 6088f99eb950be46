package session

import (
	"testing"

	"github.com/callctl/callctl/internal/media"
)

func TestUsedCodecIsTheFirstSharedOneAndSameCodecComparesPayloadTypes(t *testing.T) {
	pcmu := media.Codec{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	pcma := media.Codec{PayloadType: 8, Name: "PCMA", ClockRate: 8000}
	te := media.Codec{PayloadType: 101, Name: "telephone-event", ClockRate: 8000}
	mine := media.MediaInfo{Codecs: []media.Codec{te, pcma, pcmu}}
	if c, ok := usedCodec(mine, media.MediaInfo{Codecs: []media.Codec{pcmu, te}}); !ok || c != pcmu {
		t.Errorf("usedCodec = %+v, %v; want PCMU (the only audio codec both have)", c, ok)
	}
	if _, ok := usedCodec(media.MediaInfo{Codecs: []media.Codec{pcmu}}, media.MediaInfo{Codecs: []media.Codec{pcma}}); ok {
		t.Errorf("usedCodec found a shared codec between PCMU and PCMA")
	}
	if sameCodec(pcmu, media.Codec{PayloadType: 96, Name: "pcmu", ClockRate: 8000}) {
		t.Errorf("sameCodec ignores the payload type")
	}
	if !sameCodec(pcmu, media.Codec{PayloadType: 0, Name: "pcmu", ClockRate: 8000}) {
		t.Errorf("sameCodec compares names case-sensitively")
	}
}
