/* Placeholder */
typedef int ib_decode_placeholder_t;
