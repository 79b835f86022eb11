"""ESPnet glue: task, model and trainer wrapping the core; the core never imports it."""
