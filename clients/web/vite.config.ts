import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API to a console service on :8080 (`make run` starts one).
const api = "http://localhost:8080";

export default defineConfig({
  plugins: [react()],
  // The generated descriptors of every proto make one chunk of about 500 kB (150 kB gzip).
  build: { chunkSizeWarningLimit: 800 },
  server: {
    proxy: {
      "/callcue.console.v1.": api,
      "/api": api,
      "/ws": { target: api, ws: true },
    },
  },
});
