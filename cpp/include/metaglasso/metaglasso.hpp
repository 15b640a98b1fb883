// Umbrella header of the metaglasso C++ core.
#pragma once

#include "metaglasso/common.hpp"
#include "metaglasso/compression.hpp"
#include "metaglasso/covariance_products.hpp"
#include "metaglasso/dataset.hpp"
#include "metaglasso/fit.hpp"
#include "metaglasso/glasso.hpp"
#include "metaglasso/joint_glasso.hpp"
#include "metaglasso/lanczos.hpp"
#include "metaglasso/model.hpp"
#include "metaglasso/random.hpp"
#include "metaglasso/version.hpp"
