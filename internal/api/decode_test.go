package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// bodyKinds are every body the API decodes: the operations without one
// (hold, hangup, ...) decode into an empty struct.
var bodyKinds = []struct {
	name string
	new  func() any
}{
	{"none", func() any { return &struct{}{} }},
	{"transfer", func() any { return &transferBody{} }},
	{"forward", func() any { return &forwardBody{} }},
	{"dtmf", func() any { return &dtmfBody{} }},
	{"listen", func() any { return &listenBody{} }},
}

func decodeString(dst any, body string) *httpError {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return decodeBody(r, dst)
}

// Member names must be the documented ones exactly and once: a body a proxy
// reads one way ("target" given twice, or "TARGET") must not reach the
// operation read another. Anything but an object, null included, is no body.
func TestDecodeBodyRefusesAmbiguousNamesAndNonObjects(t *testing.T) {
	for _, c := range []struct {
		body string
		want string
	}{
		{`null`, "must be a JSON object, not null"},
		{`[]`, "must be a JSON object, not an array"},
		{`"2999"`, "must be a JSON object, not a string"},
		{`7`, "must be a JSON object, not a number"},
		{`{"Target":"2999"}`, `unknown field "Target" (allowed: target; names are case-sensitive)`},
		{`{"TARGET":"2999"}`, `unknown field "TARGET"`},
		{`{"target":"2999","target":"sip:2999@203.0.113.9"}`, `field "target" is given twice`},
		{`{"target":"2999","priority":"high"}`, `unknown field "priority"`},
		{`{"target":7}`, `field "target" must be a string`},
		{`{"target":"2999"} {}`, "data after the JSON object"},
		{`{"target":`, "ends too early"},
	} {
		var b forwardBody
		he := decodeString(&b, c.body)
		if he == nil || he.status != http.StatusBadRequest || he.body.Code != "invalid_argument" || !strings.Contains(he.body.Message, c.want) {
			t.Errorf("decode(%s) = %v (%+v); want 400 invalid_argument with %q", c.body, he, b, c.want)
		}
	}
	var b forwardBody
	if he := decodeString(&b, ` {"target":"2999"} `); he != nil || b.Target != "2999" {
		t.Errorf("decode of a plain body: %v, %+v; want target 2999", he, b)
	}
	var none struct{}
	if he := decodeString(&none, `{"none":1}`); he == nil || !strings.Contains(he.body.Message, `unknown field "none"`) {
		t.Errorf(`decode({"none":1}) into no fields = %v; want unknown field "none"`, he)
	}
}

// FuzzDecodeBody drives decodeBody with every body type the API decodes.
// It must not panic; a refusal is a 400 invalid_argument with a message;
// an accepted body is what the rules say it must be: at most maxBody
// bytes, empty or one JSON object whose member names are the struct's
// documented names, each once, each a string; the decoded value holds
// exactly those strings and survives encoding and decoding again.
func FuzzDecodeBody(f *testing.F) {
	// The seed corpus is testdata/fuzz/FuzzDecodeBody: valid bodies of each
	// kind and the refusals of TestDecodeBodyRefusesAmbiguousNamesAndNonObjects.
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := bodyKinds[int(kind)%len(bodyKinds)]
		dst := k.new()
		he := decodeString(dst, string(body))
		if he != nil {
			if he.status != http.StatusBadRequest || he.body.Code != "invalid_argument" || he.body.Message == "" {
				t.Fatalf("%s %q refused with %d %q %q; want 400 invalid_argument and a message", k.name, body, he.status, he.body.Code, he.body.Message)
			}
			return
		}
		if len(body) > maxBody {
			t.Fatalf("%s: accepted a %d-byte body; the limit is %d", k.name, len(body), maxBody)
		}
		want := map[string]string{}
		if len(bytes.TrimSpace(body)) > 0 {
			var members map[string]any
			if !json.Valid(body) || json.Unmarshal(body, &members) != nil || members == nil {
				t.Fatalf("%s: accepted %q, which is not a JSON object", k.name, body)
			}
			if n := countMembers(t, body); n != len(members) {
				t.Fatalf("%s: accepted %q with %d members but %d names: a name is given twice", k.name, body, n, len(members))
			}
			names := jsonFields(dst)
			for name, v := range members {
				s, ok := v.(string)
				if !ok || !slices.Contains(names, name) {
					t.Fatalf("%s: accepted member %q = %v in %q; allowed: string fields %v", k.name, name, v, body, names)
				}
				want[name] = s
			}
		}
		got := stringFields(dst)
		for name, v := range got {
			if v != want[name] {
				t.Fatalf("%s: decoded %s = %q from %q; want %q", k.name, name, v, body, want[name])
			}
		}
		again, err := json.Marshal(dst)
		if err != nil {
			t.Fatalf("%s: encoding the decoded %+v: %v", k.name, dst, err)
		}
		dst2 := k.new()
		if he := decodeString(dst2, string(again)); he != nil || !reflect.DeepEqual(dst, dst2) {
			t.Fatalf("%s: %q decoded to %+v, whose encoding %s decodes to %+v (%v)", k.name, body, dst, again, dst2, he)
		}
	})
}

// countMembers counts the top-level member names of a JSON object.
func countMembers(t *testing.T, body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// stringFields maps the JSON names of the struct dst points to to their
// string values.
func stringFields(dst any) map[string]string {
	v := reflect.ValueOf(dst).Elem()
	out := map[string]string{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		out[name] = v.Field(i).String()
	}
	return out
}
