//go:build windows

package login

import (
	"errors"
	"syscall"
)

// wsaeAddrInUse is WSAEADDRINUSE, what Windows sockets report for a busy port.
const wsaeAddrInUse = syscall.Errno(10048)

func isAddrInUse(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == wsaeAddrInUse || errno == syscall.EADDRINUSE)
}
