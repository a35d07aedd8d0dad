// Loaded right after htmx in the admin: htmx would otherwise inject an inline <style> for its indicators, which
// the Content-Security-Policy refuses. It reads its config when the document is ready, after this runs.
htmx.config.includeIndicatorStyles = false;
htmx.config.allowEval = false;
