package credentials

import (
	"bytes"
	"os"
	"strconv"
)

// processReadBytes returns how many bytes the process has read through
// read system calls so far (rchar in /proc/self/io), and false where the
// kernel does not report it. It counts every goroutine's reads: a bound
// on its growth across a step must leave room for the rest of the package.
func processReadBytes() (int64, bool) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("rchar:")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
