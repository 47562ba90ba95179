//go:build unix && !linux

package main

// becomeSubreaper does nothing on Unix systems other than Linux, since
// only Linux has child subreapers. There, init reaps the processes of a
// group whose parent died.
func becomeSubreaper() {}
