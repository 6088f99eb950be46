package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable callctl reads.
const EnvPrefix = "CALLCTL_"

// leaf is one scalar (or list of scalars) setting, addressed three ways.
type leaf struct {
	key string        // "media.rtp_ports"
	env string        // "CALLCTL_MEDIA_RTP_PORTS"
	val reflect.Value // settable field inside a Config
}

// leaves lists every setting of cfg that an environment variable can set:
// scalar fields and lists of scalars, found by walking the yaml tags so the
// list stays true as keys are added. Lists of sections (routes) have no
// variable: they only come from the file.
func leaves(cfg *Config) []leaf {
	var out []leaf
	var walk func(v reflect.Value, key string)
	walk = func(v reflect.Value, key string) {
		t := v.Type()
		for i := range t.NumField() {
			name := yamlKey(t.Field(i))
			if name == "" {
				continue
			}
			fv, k := v.Field(i), join(key, name)
			switch {
			case fv.Kind() == reflect.Struct && fv.Type() != durationType:
				walk(fv, k)
			case fv.Kind() == reflect.Slice && !isScalar(fv.Type().Elem()):
				// no variable for lists of sections
			default:
				env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
				out = append(out, leaf{key: k, env: env, val: fv})
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return out
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map, reflect.Array, reflect.Pointer, reflect.Interface:
		return false
	}
	return true
}

// EnvVars returns, sorted, the names of the environment variables ApplyEnv
// reads: CALLCTL_<SECTION>_<KEY> for every scalar key, upper-cased.
func EnvVars() []string {
	var cfg Config
	var names []string
	for _, l := range leaves(&cfg) {
		names = append(names, l.env)
	}
	sort.Strings(names)
	return names
}

// ApplyEnv overrides cfg with the CALLCTL_<SECTION>_<KEY> variables present
// in environ ("NAME=value" strings, as from os.Environ). A variable that is
// set overrides its key even when empty. Lists are comma-separated
// (CALLCTL_SIP_ALLOW=127.0.0.0/8,10.0.0.0/8); durations are Go duration
// strings. Variables ApplyEnv does not know are ignored. A value of the
// wrong type is an error naming the variable; every such error is returned,
// and cfg keeps the values that did parse.
func ApplyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = value
		}
	}
	var errs []error
	for _, l := range leaves(cfg) {
		value, ok := env[l.env]
		if !ok {
			continue
		}
		if err := setFromString(l.val, value); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (%s): %w", l.env, value, l.key, err))
		}
	}
	return errors.Join(errs...)
}

// setFromString parses s into v according to v's type.
func setFromString(v reflect.Value, s string) error {
	t := v.Type()
	if t == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not %s", typeName(t))
		}
		v.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not %s", typeName(t))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			return fmt.Errorf("not %s", typeName(t))
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			return fmt.Errorf("not %s", typeName(t))
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), t.Bits())
		if err != nil {
			return fmt.Errorf("not %s", typeName(t))
		}
		v.SetFloat(f)
	case reflect.Slice:
		var parts []string
		if strings.TrimSpace(s) != "" {
			parts = strings.Split(s, ",")
		}
		list := reflect.MakeSlice(t, len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(list.Index(i), strings.TrimSpace(p)); err != nil {
				return fmt.Errorf("item %d %q: %w", i+1, strings.TrimSpace(p), err)
			}
		}
		v.Set(list)
	default:
		return fmt.Errorf("type %s cannot be set from the environment", t)
	}
	return nil
}
