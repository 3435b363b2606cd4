/*
 * loom/loom.h: the whole public API of libloom. Include this one header.
 * What is not declared under include/loom/ is not API.
 */
#ifndef LOOM_LOOM_H
#define LOOM_LOOM_H

#include "any.h"
#include "common.h"
#include "doc.h"
#include "proto.h"
#include "provider.h"
#include "server.h"
#include "store.h"
#include "update.h"

#endif
