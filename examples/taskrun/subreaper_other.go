//go:build !linux

package main

// becomeSubreaper does nothing outside Linux, which alone has child
// subreapers. There, the processes of a group whose parent died are reaped
// by init.
func becomeSubreaper() {}
