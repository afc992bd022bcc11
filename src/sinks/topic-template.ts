/**
 * The "{topic}" placeholder of a sink's destination name (Kafka topic, Redis stream or list
 * key), replaced by the route's topic (config/schema.ts). The one owner of the placeholder:
 * the JS sinks use topicTemplate(); the native Redis writer gets templateParts() and joins
 * them with each message's topic in C (native/redis_writer.c, resp_key), so both name the
 * same key.
 */
const PLACEHOLDER = '{topic}';

/** The template's literal text around each "{topic}", in order (one part when it has none). */
export function templateParts(template: string): string[] {
  return template.split(PLACEHOLDER);
}

/**
 * The destination name for a route topic: every "{topic}" replaced by `spell(topic)` (how the
 * destination writes a route topic; as it is by default). A template without one names the
 * same destination for every topic.
 */
export function topicTemplate(template: string, spell: (topic: string) => string = (t) => t): (topic: string) => string {
  const parts = templateParts(template);
  if (parts.length === 1) return () => template;
  return (topic) => parts.join(spell(topic));
}
