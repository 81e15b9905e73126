import CFuse
import LayerFSCore
