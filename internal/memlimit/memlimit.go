// Package memlimit sets the Go runtime's soft memory limit from the memory Lambda gives the
// function (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB), so that the garbage collector works
// harder as the heap nears the function's memory instead of letting the process grow until
// Lambda kills it. A GOMEMLIMIT set on the function wins: the runtime has applied it already.
package memlimit

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// EnvMemorySize is the variable Lambda sets to the function's memory, in MB.
const EnvMemorySize = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"

// MinHeadroom is the least memory kept outside the limit for what the Go runtime does not
// count against it (the binary, goroutine stacks below the limit's accounting, the kernel's
// page tables) and for the growth between two collections.
const MinHeadroom = 16 << 20

// Limit returns the soft memory limit for the function's configured memory: the memory less
// a tenth of it (at least MinHeadroom). It returns 0, and no error, when GOMEMLIMIT is set or
// the function runs outside Lambda (no memory size in the environment).
func Limit(getenv func(string) string) (int64, error) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) != "" {
		return 0, nil
	}
	v := strings.TrimSpace(getenv(EnvMemorySize))
	if v == "" {
		return 0, nil
	}
	mb, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mb <= 0 || mb > 1<<20 {
		return 0, fmt.Errorf("memory limit: %s=%q is not a size in MB", EnvMemorySize, v)
	}
	total := mb << 20
	headroom := max(total/10, MinHeadroom)
	if headroom >= total {
		return 0, fmt.Errorf("memory limit: %s=%d MB leaves no room for the Go heap", EnvMemorySize, mb)
	}
	return total - headroom, nil
}

// Apply sets the runtime's soft memory limit to Limit(getenv) when there is one, and
// returns it (0 when nothing was set).
func Apply(getenv func(string) string) (int64, error) {
	limit, err := Limit(getenv)
	if err != nil || limit == 0 {
		return 0, err
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}
