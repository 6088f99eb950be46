// Package config defines callctl's configuration and how it is assembled:
// built-in defaults (Default), overlaid by a YAML file (Load, strict: an
// unknown or mistyped key is an error naming the file, line and key), then by
// CALLCTL_<SECTION>_<KEY> environment variables (ApplyEnv), then by command
// line flags (cmd/callctl). Validate checks the result and reports every bad
// field at once, each error naming the key and the values it accepts.
// configs/callctl.yaml documents every key with its default; tests keep the
// two in step. The package knows nothing of SIP, media or logging: it only
// parses and checks values.
package config
