// Package bench measures the task package against the code a caller would
// otherwise write or import: a hand-written goroutine with a context and a
// done channel, errgroup, conc, and the state-machine libraries looplab/fsm
// and qmuntal/stateless configured with task's statuses and transitions.
//
// The package has no code of its own outside its benchmarks. It is a
// separate module so that task itself keeps depending on the standard
// library only. run.sh runs the full set and prints a benchstat table;
// BENCHMARKS.md at the repository root records a run and the ratios that
// task's cost targets are stated in.
package bench
