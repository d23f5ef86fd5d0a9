// Package fsutil writes files the way secrets must be written: to a temporary file in the same
// directory, fsynced, then linked or renamed into place, so a crash never leaves a half-written
// key and an existing file is never overwritten by accident.
package fsutil
