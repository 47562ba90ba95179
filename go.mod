module github.com/tasklife/task

go 1.26
