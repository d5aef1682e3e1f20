// The lesson pages without a drawing pad (the start, the model, the data):
// their links to the drawing lessons carry the drawing last on show in this
// tab, so a learner who steps through the model page finds it again.

import {carried, carryLinks} from "./share.js";

carryLinks(carried());
