package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load returns Default() overlaid with the YAML file at path. Keys the file
// leaves out keep their defaults; a list in the file replaces the default
// list. Durations are Go duration strings ("30s", "1m30s").
//
// Decoding is strict: an unknown key, a value of the wrong type or a YAML
// syntax error is an error of the form "FILE:LINE: message", naming the key.
// All such problems in the file are reported together. Load does not call
// Validate: the environment and flags may still change the result.
//
// An empty path means no file: Load returns Default().
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := decodeInto(&cfg, path, data); err != nil {
		return Default(), err
	}
	// "[]" and an absent list mean the same: nil, as in Default().
	if len(cfg.Routes) == 0 {
		cfg.Routes = nil
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = nil
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = nil
	}
	if len(cfg.Listen.ICEIPs) == 0 {
		cfg.Listen.ICEIPs = nil
	}
	if len(cfg.Listen.NAT1To1IPs) == 0 {
		cfg.Listen.NAT1To1IPs = nil
	}
	if len(cfg.Calls.TransferHosts) == 0 {
		cfg.Calls.TransferHosts = nil
	}
	if len(cfg.Cluster.Embedded.Routes) == 0 {
		cfg.Cluster.Embedded.Routes = nil
	}
	return cfg, nil
}

// decodeInto overlays the YAML document in data onto cfg. name is the file
// name used in error messages.
func decodeInto(cfg *Config, name string, data []byte) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file or comments only: nothing to overlay
		}
		return yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return yamlError(name, err)
		}
		return fmt.Errorf("%s:%d: more than one YAML document (remove the second \"---\")", name, line)
	}

	// Our own walk first: it knows key paths and can say what was expected.
	c := checker{file: name}
	c.check(&doc, reflect.TypeOf(*cfg), "")
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}

	// Then the real decode, strict as well, in case the walk missed anything.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(cfg); err != nil {
		return yamlError(name, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns yaml.v3's "line N: msg" errors into "FILE:N: msg" ones.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			errs = append(errs, fmt.Errorf("%s:%s: %s", name, sub[1], sub[2]))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", name, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.Join(errs...)
}

// checker walks a YAML node tree beside the Go type it will be decoded
// into and collects friendly errors for unknown keys and mistyped values.
type checker struct {
	file string
	errs []error
}

func (c *checker) errorf(line int, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s:%d: %s", c.file, line, fmt.Sprintf(format, args...)))
}

var durationType = reflect.TypeOf(time.Duration(0))

// check reports problems with node, which will be decoded into a value of
// type t at key path (dotted, "" for the top level).
func (c *checker) check(node *yaml.Node, t reflect.Type, path string) {
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return
		}
		node = node.Content[0]
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if isNull(node) {
		return // "key:" with no value keeps the section's defaults / empties a list
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		c.checkMapping(node, t, path)
	case t.Kind() == reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			c.errorf(node.Line, "%s: expected a list (e.g. [a, b] or one \"- item\" per line), got %s", path, describe(node))
			return
		}
		for i, elem := range node.Content {
			c.check(elem, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if node.Kind != yaml.ScalarNode {
			c.errorf(node.Line, "%s: expected %s, got %s", path, typeName(t), describe(node))
			return
		}
		v := reflect.New(t)
		if err := node.Decode(v.Interface()); err != nil {
			c.errorf(node.Line, "%s: %q is not %s", path, node.Value, typeName(t))
		}
	}
}

func (c *checker) checkMapping(node *yaml.Node, t reflect.Type, path string) {
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	if node.Kind != yaml.MappingNode {
		c.errorf(node.Line, "%s: expected a mapping of keys (%s), got %s", orTop(path), strings.Join(yamlKeys(t), ", "), describe(node))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Tag == "!!merge" {
			continue // "<<: *anchor": left to yaml.v3, which checks it on decode
		}
		if first, dup := seen[k.Value]; dup {
			c.errorf(k.Line, "key %q %s given twice (first at line %d)", k.Value, where, first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			known := yamlKeys(t)
			hint := ""
			if s := Closest(k.Value, known); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			c.errorf(k.Line, "unknown key %q %s (known: %s)%s", k.Value, where, strings.Join(known, ", "), hint)
			continue
		}
		c.check(v, f.Type, join(path, k.Value))
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func orTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// typeName says what a leaf of type t must look like, in a user's words.
func typeName(t reflect.Type) string {
	if t == durationType {
		return `a duration (write it like "30s", "500ms" or "1m30s")`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a single value"
	}
	return "a " + t.String()
}

// yamlKey returns the yaml key of struct field f, or "" if it has none.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name) // yaml.v3's default
	}
	return name
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// Closest returns the candidate nearest to s, if one is close enough (at
// most 2 edits, and fewer than half of s) to suggest for a misspelt key or
// variable; else "".
func Closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD && 2*d < len(s) {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
