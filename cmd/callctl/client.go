package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/api"
)

// Environment variables the client commands read.
const (
	apiURLEnv     = "CALLCTL_API_URL"
	tokenEnv      = "CALLCTL_TOKEN"
	adminTokenEnv = "CALLCTL_ADMIN_TOKEN"
)

// defaultRequestTimeout bounds one API request. The API waits up to 60 s
// for an operation's outcome (a transfer waits for the final NOTIFY), so the
// client waits a little longer than that.
const defaultRequestTimeout = 70 * time.Second

// clientCommand is a subcommand that talks to a running callctl's API.
type clientCommand struct {
	name string
	// args names the positional arguments, e.g. ID TRANSFEROR TARGET.
	args []string
	help string
	// body builds the JSON request body of an operation from its positional
	// arguments after ID; nil sends none.
	body func(args []string) any
}

// usageLine is the command's synopsis, e.g. "callctl transfer [flags] ID TRANSFEROR TARGET".
func (c clientCommand) usageLine() string {
	if c.name == "sessions" {
		return "callctl sessions [--watch] [--state S] [--number N] [flags]"
	}
	return strings.TrimSpace("callctl " + c.name + " [flags] " + strings.Join(c.args, " "))
}

// clientCommands are the client subcommands: sessions, then the operations
// of POST /api/v1/sessions/{id}/<name>.
var clientCommands = []clientCommand{
	{name: "sessions", help: "list the sessions as a table, or follow their events with --watch"},
	{name: "hold", args: []string{"ID"}, help: "put both parties on hold (music on hold) → ON_HOLD"},
	{name: "unhold", args: []string{"ID"}, help: "resume both parties → IN_CALL"},
	{name: "hangup", args: []string{"ID"}, help: "hang up both parties → HUNG_UP; the session stays readable"},
	{name: "close", args: []string{"ID"}, help: "release the session at once, ending its legs → CLOSED"},
	{name: "close-with-hangup", args: []string{"ID"}, help: "hang up both parties, then release the session → CLOSED"},
	{name: "transfer", args: []string{"ID", "TRANSFEROR", "TARGET"},
		help: "blind transfer: TRANSFEROR (the caller's or callee's number) leaves, their peer goes to TARGET",
		body: func(a []string) any { return map[string]string{"transferor": a[0], "target": a[1]} }},
	{name: "forward", args: []string{"ID", "TARGET"}, help: "send the call to TARGET instead of the callee",
		body: func(a []string) any { return map[string]string{"target": a[0]} }},
	{name: "dtmf", args: []string{"ID", "PARTY", "KEYS"}, help: "send KEYS (0-9 * # A-D) to PARTY (the caller's or callee's number)",
		body: func(a []string) any { return map[string]string{"party": a[0], "keys": a[1]} }},
}

func lookupClientCommand(name string) (clientCommand, bool) {
	for _, c := range clientCommands {
		if c.name == name {
			return c, true
		}
	}
	return clientCommand{}, false
}

// clientOptions are the flags every client command takes.
type clientOptions struct {
	apiURL   string
	token    string
	config   string
	insecure bool
	json     bool
	timeout  time.Duration
}

// sessionsOptions are the flags only `callctl sessions` takes.
type sessionsOptions struct {
	watch         bool
	state, number string
}

// newClientFlagSet returns the flags of a client command; so is non-nil
// for `sessions`, whose own flags it adds.
func newClientFlagSet(name string, o *clientOptions, so *sessionsOptions) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed by the caller
	fs.StringVar(&o.apiURL, "api-url", "", "callctl API base `URL` (default $"+apiURLEnv+", else http:// and api.listen of the configuration)")
	fs.StringVar(&o.token, "token", "", "API bearer `TOKEN` (default $"+tokenEnv+", else $"+adminTokenEnv+"); prefer the environment, as a command line is visible to other users")
	fs.StringVar(&o.config, "config", "", "YAML config `FILE` to read api.listen from (default $"+configEnv+")")
	fs.BoolVar(&o.insecure, "insecure", false, "accept any TLS certificate (a self-signed one on a test machine)")
	fs.BoolVar(&o.json, "json", false, "print the API's JSON instead of text, for scripts")
	fs.DurationVar(&o.timeout, "timeout", defaultRequestTimeout, "give up on a request after this `DURATION`")
	if so != nil {
		fs.BoolVar(&so.watch, "watch", false, "sessions only: follow the event stream, one line per event, until interrupted")
		fs.StringVar(&so.state, "state", "", "sessions only: only sessions (events with --watch) in `STATE`, e.g. IN_CALL")
		fs.StringVar(&so.number, "number", "", "sessions only: only sessions whose caller, callee or dialled number is `NUMBER`")
	}
	return fs
}

// parseInterspersed parses flags wherever they are among the positional
// arguments (`callctl hold ID --json`), as people type them. "--" ends
// the flags. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// runClient runs a client command and returns the exit code.
func runClient(ctx context.Context, cmd clientCommand, args, environ []string, stdout, stderr io.Writer) int {
	var o clientOptions
	var so *sessionsOptions
	if cmd.name == "sessions" {
		so = &sessionsOptions{}
	}
	fs := newClientFlagSet("callctl "+cmd.name, &o, so)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		clientUsage(stdout, cmd)
		return exitOK
	case err != nil:
		return usageFailure(stderr, cmd, err.Error())
	case len(pos) != len(cmd.args):
		return usageFailure(stderr, cmd, wrongArgs(cmd, pos))
	case o.timeout <= 0:
		return usageFailure(stderr, cmd, fmt.Sprintf("--timeout %v must be positive", o.timeout))
	}
	if so != nil && so.state != "" {
		if msg := checkState(so.state); msg != "" {
			return usageFailure(stderr, cmd, msg)
		}
	}
	c, err := newAPIClient(o, environ)
	if err != nil {
		fmt.Fprintf(stderr, "callctl: %v\n", err)
		return exitUsage
	}
	defer c.close()
	if cmd.name == "sessions" {
		if so.watch {
			return watch(ctx, c, o, *so, stdout, stderr)
		}
		return listSessions(ctx, c, o, *so, stdout, stderr)
	}
	return operate(ctx, c, o, cmd, pos, stdout, stderr)
}

// wrongArgs says what is wrong with a command's positional arguments.
func wrongArgs(cmd clientCommand, pos []string) string {
	if len(cmd.args) == 0 {
		return fmt.Sprintf("%s takes no arguments, got %q", cmd.name, pos)
	}
	if len(pos) < len(cmd.args) {
		return fmt.Sprintf("%s needs %s; missing %s", cmd.name, strings.Join(cmd.args, " "), strings.Join(cmd.args[len(pos):], " "))
	}
	return fmt.Sprintf("%s needs %s; unexpected %q", cmd.name, strings.Join(cmd.args, " "), pos[len(cmd.args):])
}

// usageFailure reports a command-line mistake with the command's usage
// and returns exitUsage.
func usageFailure(stderr io.Writer, cmd clientCommand, msg string) int {
	fmt.Fprintf(stderr, "callctl: %s\nusage: %s (see callctl %s -h)\n", msg, cmd.usageLine(), cmd.name)
	return exitUsage
}

// clientUsage prints one client command's help.
func clientUsage(w io.Writer, cmd clientCommand) {
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n\nFlags:\n", cmd.usageLine(), upperFirst(cmd.help))
	var o clientOptions
	var so *sessionsOptions
	if cmd.name == "sessions" {
		so = &sessionsOptions{}
	}
	fs := newClientFlagSet("callctl "+cmd.name, &o, so)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// apiClient makes requests to callctl's API with one client's token. The
// token goes only into the Authorization header, never into a URL or a
// message.
type apiClient struct {
	base  string // e.g. "http://127.0.0.1:8080", without a trailing slash
	token string
	http  *http.Client
}

// newAPIClient resolves the API address and token: flags, then the
// environment, then (for the address) the configuration's api.listen.
func newAPIClient(o clientOptions, environ []string) (*apiClient, error) {
	base := o.apiURL
	if base == "" {
		base = lookupEnv(environ, apiURLEnv)
	}
	if base == "" {
		var args []string
		if o.config != "" {
			args = []string{"--config", o.config}
		}
		cfg, err := loadConfig(args, environ)
		if err != nil {
			return nil, fmt.Errorf("finding the API address (give --api-url or set %s): %w", apiURLEnv, err)
		}
		base = apiURLFromListen(cfg.API.Listen, cfg.API.TLSCert != "")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("API URL %q: want http://HOST:PORT or https://HOST:PORT", base)
	}
	token := o.token
	if token == "" {
		token = lookupEnv(environ, tokenEnv)
	}
	if token == "" {
		token = lookupEnv(environ, adminTokenEnv)
	}
	if token == "" {
		return nil, fmt.Errorf("no API token: set %s (or give --token); `callctl token new` makes one", tokenEnv)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	return &apiClient{
		base:  strings.TrimSuffix(u.String(), "/"),
		token: token,
		http:  &http.Client{Transport: tr, Timeout: o.timeout},
	}, nil
}

// apiURLFromListen is the URL a client on this machine reaches an API
// listening on listen at: an unspecified host (all interfaces) is reached
// on loopback.
func apiURLFromListen(listen string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + "://" + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// close releases the client's idle connections.
func (c *apiClient) close() { c.http.CloseIdleConnections() }

// serverError is an API answer other than 2xx.
type serverError struct {
	status  int
	code    string
	message string
	body    []byte // as received, for --json
}

func (e *serverError) Error() string {
	if e.code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.message, e.status)
	}
	return fmt.Sprintf("%s (HTTP %d %s)", e.message, e.status, e.code)
}

// errorFromResponse reads the API's {"error":{"code","message"}} body, or
// describes a body that is not one (a proxy's error page, say).
func errorFromResponse(status int, body []byte) *serverError {
	e := &serverError{status: status, body: body}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		e.code, e.message = eb.Error.Code, eb.Error.Message
	} else {
		e.message = http.StatusText(status)
		if line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n"); line != "" {
			e.message += ": " + truncate(line, 200)
		}
	}
	if status == http.StatusUnauthorized {
		e.message += fmt.Sprintf("; check --token or %s", tokenEnv)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// do sends a request and returns the body of a 2xx answer, or a
// *serverError, or the transport's error.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorFromResponse(resp.StatusCode, data)
	}
	return data, nil
}

// fail prints a request's error (and, with --json, the server's error
// body on stdout) and returns exitRuntime.
func fail(o clientOptions, err error, stdout, stderr io.Writer) int {
	var se *serverError
	if o.json && errors.As(err, &se) && json.Valid(se.body) {
		stdout.Write(se.body) //nolint:errcheck // nothing to do about a broken stdout
	}
	fmt.Fprintf(stderr, "callctl: %v\n", err)
	return exitRuntime
}

// operate POSTs an operation and prints its outcome.
func operate(ctx context.Context, c *apiClient, o clientOptions, cmd clientCommand, pos []string, stdout, stderr io.Writer) int {
	id := pos[0]
	var body any
	if cmd.body != nil {
		body = cmd.body(pos[1:])
	}
	data, err := c.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(id)+"/"+cmd.name, nil, body)
	if err != nil {
		return fail(o, err, stdout, stderr)
	}
	if o.json {
		stdout.Write(data) //nolint:errcheck // nothing to do about a broken stdout
		return exitOK
	}
	var res struct {
		Session api.SessionView `json:"session"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(stderr, "callctl: %s succeeded but its answer is not the API's JSON: %v\n", cmd.name, err)
		return exitRuntime
	}
	switch {
	case res.Session.State == "":
		fmt.Fprintf(stdout, "%s %s: ok\n", cmd.name, id)
	default:
		fmt.Fprintf(stdout, "%s %s: ok, session %s\n", cmd.name, id, res.Session.State)
	}
	return exitOK
}
