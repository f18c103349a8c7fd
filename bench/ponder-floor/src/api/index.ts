import { Hono } from "hono";

// Ponder serves /health, /ready, /status and /metrics itself.
export default new Hono();
