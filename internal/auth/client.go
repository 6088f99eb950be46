package auth

import (
	"fmt"
	"regexp"
)

// Client is an authenticated API client: its name (for logs and the audit
// trail), what it may do and which sessions it may see. A Client does not
// change once made; its methods are safe for concurrent use. A nil *Client
// may do nothing and sees nothing.
type Client struct {
	// Name identifies the client in logs and the audit trail.
	Name string

	privs privSet
	// scope holds the compiled, anchored scope patterns; nil means the
	// client sees every session.
	scope    []*regexp.Regexp
	patterns []string
	// targets holds the compiled transfer/forward target patterns (the
	// client's and its roles'); nil means any number.
	targets        []*regexp.Regexp
	targetPatterns []string
}

// NewClient makes a client from privileges and scope patterns (regular
// expressions, each matched against a whole number), for callers that build
// clients outside the configuration, such as tests. It returns an error if a
// privilege is unknown or a pattern does not compile.
func NewClient(name string, privileges []Privilege, scope []string) (*Client, error) {
	c := &Client{Name: name}
	for _, p := range privileges {
		b, ok := privBit(p)
		if !ok {
			return nil, fmt.Errorf("%q is not a privilege (allowed: %s)", p, allowedList)
		}
		c.privs |= b
	}
	for _, s := range scope {
		re, err := compileScope(s)
		if err != nil {
			return nil, err
		}
		c.scope = append(c.scope, re)
		c.patterns = append(c.patterns, s)
	}
	return c, nil
}

// NewAdmin returns the bootstrap administrator: every privilege, no scope,
// named "admin". Register it with Authenticator.AddClient and the hash of its
// token.
func NewAdmin() *Client {
	return &Client{Name: "admin", privs: allPrivs}
}

// Can reports whether the client holds privilege p.
func (c *Client) Can(p Privilege) bool {
	return c != nil && c.privs.has(p)
}

// Privileges returns the client's privileges, sorted by name: its own and
// those of its roles.
func (c *Client) Privileges() []Privilege {
	if c == nil {
		return nil
	}
	return c.privs.list()
}

// Scope returns the client's scope patterns as configured (not anchored), or
// nil if it has no scope.
func (c *Client) Scope() []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.patterns...)
}

// InScope reports whether the client may see a session with these numbers
// (its caller and callee). A client without a scope sees every session;
// otherwise at least one number must match at least one scope pattern as a
// whole: pattern "1\d{3}" matches "1234" but not "12345" or "91234".
func (c *Client) InScope(numbers ...string) bool {
	if c == nil {
		return false
	}
	if len(c.scope) == 0 {
		return true
	}
	for _, n := range numbers {
		for _, re := range c.scope {
			if re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

// WithTargets returns a copy of c that may transfer and forward only to
// numbers matching one of patterns (regular expressions, whole number), for
// callers that build clients outside the configuration. It returns an error
// if a pattern does not compile.
func (c *Client) WithTargets(patterns []string) (*Client, error) {
	cp := *c
	cp.targets, cp.targetPatterns = nil, nil
	for _, p := range patterns {
		if err := cp.addTarget(p); err != nil {
			return nil, err
		}
	}
	return &cp, nil
}

func (c *Client) addTarget(p string) error {
	re, err := compileScope(p)
	if err != nil {
		return err
	}
	c.targets = append(c.targets, re)
	c.targetPatterns = append(c.targetPatterns, p)
	return nil
}

// Targets returns the client's transfer/forward target patterns as
// configured (its own, then its roles'), or nil if it may use any number.
func (c *Client) Targets() []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.targetPatterns...)
}

// MayTarget reports whether the client may transfer or forward a call to
// number (a dial string, or the user part of a SIP URI target). A client
// without target patterns may use any number; otherwise the whole number
// must match one, as for scope.
func (c *Client) MayTarget(number string) bool {
	if c == nil {
		return false
	}
	if len(c.targets) == 0 {
		return true
	}
	for _, re := range c.targets {
		if re.MatchString(number) {
			return true
		}
	}
	return false
}

// compileScope anchors a scope pattern so that it must match a whole number.
func compileScope(s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, fmt.Errorf("empty pattern; give a regular expression for whole numbers (e.g. \"1\\\\d{3}\")")
	}
	// Compiling s alone first keeps a pattern like "1)|(.*" from escaping
	// the anchoring group below.
	if _, err := regexp.Compile(s); err != nil {
		return nil, fmt.Errorf("%q is not a regular expression: %w", s, err)
	}
	re, err := regexp.Compile(`^(?:` + s + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%q is not a regular expression: %w", s, err)
	}
	return re, nil
}
