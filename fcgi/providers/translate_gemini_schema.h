/*
 * translate_gemini_schema.h — a tool's JSON Schema (the pivot's input_schema) cut to
 * the select subset of OpenAPI 3.0 that Gemini's Schema object takes (the Gemini API's
 * and Vertex AI's FunctionDeclaration.parameters), so that a schema written for
 * Anthropic or OpenAI is not refused for a keyword Gemini does not know.
 *
 * Kept: type (upper-cased: STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT), nullable,
 * description, title, pattern, enum (strings only), format (enum and date-time on
 * strings, float and double on numbers, int32 and int64 on integers), items,
 * properties, required, anyOf, minItems, maxItems, minLength, maxLength,
 * minProperties, maxProperties, minimum, maximum. Rewritten: ["T", "null"] to T with
 * nullable; oneOf to anyOf; anyOf with a {"type": "null"} alternative to nullable, and
 * a single alternative left merged in (Optional[X] reads as X, nullable); const (a
 * string) to a one-value enum; local $ref ("#/$defs/x", "#/definitions/x") replaced by
 * the schema it names. Dropped: everything else ($schema, $id, additionalProperties,
 * default, examples, allOf, not, exclusiveMinimum, uniqueItems, remote $ref, ...),
 * an empty "properties" (Gemini refuses an OBJECT with empty properties), required
 * names that are not properties, and a type union of several non-null types (left
 * unconstrained). Not here: checking that the schema is valid JSON Schema.
 */
#ifndef TG_TRANSLATE_GEMINI_SCHEMA_H
#define TG_TRANSLATE_GEMINI_SCHEMA_H

#include <jansson.h>

/*
 * schema (borrowed; anything that is not an object gives {}) cut as above, with
 * nesting and $ref hops capped at 32 levels (a recursive schema stops there, as {}).
 * Returns a new reference, NULL when memory ran out.
 */
json_t *tg_gemini_schema(json_t *schema);

#endif
