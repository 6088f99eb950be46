package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxBody bounds every request body; operations take a few short strings.
const maxBody = 16 << 10

// decodeBody reads a JSON object into dst, refusing what a careful API
// refuses: bodies over maxBody, malformed JSON, anything but an object
// (null too), unknown fields, fields whose name differs from the
// documented one but for case (encoding/json would take "TARGET" for
// "target"), a field given twice (RFC 8259 4: names SHOULD be unique;
// which one wins depends on the parser, so a proxy and callctl could read
// different targets), wrong types, trailing data. An empty body is {}. The
// error names the problem and the allowed fields.
func decodeBody(r *http.Request, dst any) *httpError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return badRequest(fmt.Sprintf("Content-Type %q: send application/json", ct))
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("reading body: " + err.Error())
	}
	if len(data) > maxBody {
		return badRequest(fmt.Sprintf("body is larger than %d bytes", maxBody))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if msg := checkNames(data, dst); msg != "" {
		return badRequest(msg)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest(describeJSONError(err, dst))
	}
	if dec.More() {
		return badRequest("body has data after the JSON object")
	}
	return nil
}

// checkNames reads the top level of a JSON body and returns what is wrong
// with its member names ("" if nothing, or if the JSON itself is bad: the
// decoder describes that).
func checkNames(data []byte, dst any) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return ""
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Sprintf("body must be a JSON object, not %s", jsonValueKind(tok))
	}
	allowed := jsonFields(dst)
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		name, _ := tok.(string)
		switch {
		case !slices.Contains(allowed, name):
			return fmt.Sprintf("unknown field %q (allowed: %s; names are case-sensitive)", name, strings.Join(fieldNames(dst), ", "))
		case seen[name]:
			return fmt.Sprintf("field %q is given twice", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// jsonValueKind names the JSON value a first token starts.
func jsonValueKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case bool:
		return "true or false"
	case float64, json.Number:
		return "a number"
	}
	return "something else"
}

func describeJSONError(err error, dst any) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("body is not valid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("body must be a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fmt.Sprintf("unknown field %s (allowed: %s)", name, strings.Join(fieldNames(dst), ", "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body is not valid JSON: it ends too early"
	}
	return "body is not valid JSON: " + err.Error()
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// fieldNames lists dst's JSON field names for messages: "none" if it has
// none.
func fieldNames(dst any) []string {
	if names := jsonFields(dst); len(names) > 0 {
		return names
	}
	return []string{"none"}
}

// jsonFields lists the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
