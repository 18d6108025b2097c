//go:build !linux

package main

import (
	"errors"
	"net/http"
)

// congestionClient is Linux-only (TCP_CONGESTION); elsewhere it always fails.
func congestionClient(cc string) (*http.Client, error) {
	return nil, errors.New("choosing a TCP congestion control needs Linux")
}

// systemCongestion returns "unknown" outside Linux.
func systemCongestion() string { return "unknown" }
