/* Placeholder header: replaced by the independent decoders. */
#ifndef IB_TESTS_DECODE_H
#define IB_TESTS_DECODE_H
#endif
