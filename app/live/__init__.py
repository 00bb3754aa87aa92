"""The live pipeline's threads and what feeds them: the capture thread, the inference worker, the frame slot
between them, recording, background jobs and model loading."""
