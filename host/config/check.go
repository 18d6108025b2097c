package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// resolveTimeout bounds the look-up of SERVER_HOST.
const resolveTimeout = 5 * time.Second

// Check looks at what the configuration names on this machine, and changes nothing:
//
//   - TEMP_STORAGE_PATH and the directory of DATABASE_PATH must be directories this process
//     can create files in, or not exist yet below such a directory (the server creates
//     them);
//   - an existing DATABASE_PATH must be a regular file this process can read and write;
//   - SERVER_HOST must be an IP address or a name that resolves.
//
// --check-config runs it, and so does every start, before anything else: a problem it
// finds cannot go away by restarting. All problems are reported together, in an error
// wrapping ErrInvalid. A look-up of SERVER_HOST that fails for another reason than "no
// such host" (no DNS server reachable yet at boot) is not reported: listening then fails,
// and a restart may succeed.
func (c *Config) Check(ctx context.Context) error {
	var errs []error
	if err := usableDir(c.TempStoragePath); err != nil {
		errs = append(errs, fmt.Errorf("TEMP_STORAGE_PATH %s cannot be used: %w", c.TempStoragePath, err))
	}
	db, err := filepath.Abs(c.DatabasePath)
	if err != nil {
		errs = append(errs, fmt.Errorf("DATABASE_PATH: %w", err))
	} else if err := usableDir(filepath.Dir(db)); err != nil {
		errs = append(errs, fmt.Errorf("DATABASE_PATH %s cannot be used: its directory: %w", c.DatabasePath, err))
	} else if fi, err := os.Stat(db); err == nil {
		switch {
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("DATABASE_PATH %s is not a regular file", c.DatabasePath))
		case unix.Access(db, unix.R_OK|unix.W_OK) != nil:
			errs = append(errs, fmt.Errorf("DATABASE_PATH %s cannot be read and written by this user", c.DatabasePath))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("DATABASE_PATH %s: %w", c.DatabasePath, err))
	}
	if err := resolvable(ctx, c.ServerHost); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n  - %w", ErrInvalid, joinLines(errs))
	}
	return nil
}

// usableDir says why dir cannot serve as a directory the server writes in: it must be a
// directory this process may create files in, or its nearest existing ancestor must be.
func usableDir(dir string) error {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s is not a directory", p)
		case err == nil:
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				if p == filepath.Clean(dir) {
					return fmt.Errorf("this user cannot create files in it: %w", err)
				}
				return fmt.Errorf("it does not exist and this user cannot create it in %s: %w", p, err)
			}
			return nil
		case errors.Is(err, unix.ENOTDIR):
			continue // a parent is a file: reported when the loop reaches it
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if filepath.Dir(p) == p {
			return fmt.Errorf("no part of it exists")
		}
	}
}

// resolvable reports a SERVER_HOST that is neither an IP address nor a name that resolves.
func resolvable(ctx context.Context, host string) error {
	if host == "" || net.ParseIP(host) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	_, err := net.DefaultResolver.LookupHost(ctx, host)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("SERVER_HOST %q is not an IP address and does not resolve (no such host)", host)
	}
	return nil
}
