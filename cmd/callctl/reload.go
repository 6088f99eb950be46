package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/callctl/callctl/internal/api"
)

// reloadCommand is `callctl config reload`, a client command: it asks the
// running callctl (POST /api/v1/config/reload, privilege config.reload) to
// re-read its configuration as SIGHUP does, and prints what changed, or
// why nothing did (exit 1).
var reloadCommand = clientCommand{name: "config reload",
	help: "ask the running callctl to re-read its configuration (as SIGHUP does) and print what changed; exit 1 when it refused and changed nothing"}

func reloadCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	var o clientOptions
	fs := newClientFlagSet("callctl config reload", &o, nil)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		clientUsage(stdout, reloadCommand)
		return exitOK
	case err != nil:
		return usageFailure(stderr, reloadCommand, err.Error())
	case len(pos) != 0:
		return usageFailure(stderr, reloadCommand, wrongArgs(reloadCommand, pos))
	case o.timeout <= 0:
		return usageFailure(stderr, reloadCommand, fmt.Sprintf("--timeout %v must be positive", o.timeout))
	}
	c, err := newAPIClient(o, environ)
	if err != nil {
		fmt.Fprintf(stderr, "callctl: %v\n", err)
		return exitUsage
	}
	defer c.close()
	data, err := c.do(ctx, http.MethodPost, "/api/v1/config/reload", nil, nil)
	if err != nil {
		return fail(o, err, stdout, stderr)
	}
	if o.json {
		stdout.Write(data) //nolint:errcheck // nothing to do about a broken stdout
		return exitOK
	}
	var res struct {
		Reload api.ReloadOutcome `json:"reload"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(stderr, "callctl: the reload succeeded but its answer is not the API's JSON: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "config reload: ok, %s\n", res.Reload.Summary)
	return exitOK
}
