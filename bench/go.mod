module github.com/tasklife/task/bench

go 1.26.0

replace github.com/tasklife/task => ../

require (
	github.com/looplab/fsm v1.0.3
	github.com/qmuntal/stateless v1.7.2
	github.com/sourcegraph/conc v0.3.0
	golang.org/x/sync v0.25.0
)
