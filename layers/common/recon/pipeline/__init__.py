"""One logic function per Lambda stage. Handlers validate the event, call one of these, and return."""
