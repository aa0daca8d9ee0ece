// Standard input as a resource one flag at a time may read.

package main

import "fmt"

// stdinClaim records which flag reads standard input, so that a second
// flag asking for it is refused with both names.
type stdinClaim struct {
	by string // the flag that reads stdin, "" nobody
}

// take gives standard input to the flag named by, unless another has it.
func (c *stdinClaim) take(by string) error {
	if c.by != "" {
		return fmt.Errorf("%s and %s cannot both read standard input", c.by, by)
	}
	c.by = by
	return nil
}
